"""The models directory: versions, the latest link, pruning."""

import os

import numpy as np
import pytest

from batch_job.store import ModelStore
from streamtrain.model import LinearModel, read_model


def model(i: int) -> LinearModel:
    return LinearModel(np.array([float(i), 2.0]), 0.5, i, "lstsq-qr", {"run": i})


def test_publish_numbers_versions_and_points_latest_at_newest(tmp_path):
    store = ModelStore(tmp_path / "models", keep=10)
    paths = [store.publish(model(i)) for i in range(3)]
    assert [p.name for p in paths] == ["model-000001.json", "model-000002.json",
                                       "model-000003.json"]
    assert os.readlink(tmp_path / "models" / "latest.json") == "model-000003.json"
    assert read_model(tmp_path / "models" / "latest.json").metadata == {"run": 2}


def test_publish_prunes_beyond_keep_old_versions(tmp_path):
    store = ModelStore(tmp_path, keep=2)
    for i in range(6):
        store.publish(model(i))
    assert [p.name for _, p in store.versions()] == [
        "model-000004.json", "model-000005.json", "model-000006.json",
    ]
    assert store.latest() == (tmp_path / "model-000006.json").resolve()


def test_publish_never_overwrites_existing_version(tmp_path):
    store = ModelStore(tmp_path, keep=10)
    store.publish(model(1))
    (tmp_path / "model-000002.json").write_text("taken")
    os.symlink("model-000002.json", tmp_path / "ignored")
    path = store.publish(model(2))
    assert path.name == "model-000003.json"
    assert (tmp_path / "model-000002.json").read_text() == "taken"


def test_publish_leaves_no_staging_or_temporary_files(tmp_path):
    store = ModelStore(tmp_path, keep=1)
    store.publish(model(1))
    store.publish(model(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest.json", "model-000001.json", "model-000002.json",
    ]


def test_publish_failed_write_keeps_previous_latest(tmp_path, monkeypatch):
    store = ModelStore(tmp_path, keep=10)
    store.publish(model(1))

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "link", refuse)
    with pytest.raises(OSError, match="disk full"):
        store.publish(model(2))
    assert read_model(tmp_path / "latest.json").metadata == {"run": 1}
    assert [p.name for _, p in store.versions()] == ["model-000001.json"]


def test_store_negative_keep_raises():
    with pytest.raises(ValueError, match="got -1"):
        ModelStore("x", keep=-1)
