import json
import pickle
import sys

import numpy as np
import pytest

from streamtrain import artifact
from streamtrain.errors import ArtifactError
from streamtrain.model import LinearModel, read_model, write_model


def test_write_then_read_gives_every_bit_back(tmp_path):
    payload = {"w": [sys.float_info.max, -0.0, 5e-324, 0.1], "n": 3}
    artifact.write(tmp_path / "a.json", "k", 1, payload)
    got = artifact.read(tmp_path / "a.json", "k", 1)
    assert np.array(got["w"]).tobytes() == np.array(payload["w"]).tobytes()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[: len(b) // 2], "not valid JSON"),
        (lambda b: b.replace(b'"n": 3', b'"n": 4'), "fails its checksum"),
        (lambda b: b.replace(b'"version": 1', b'"version": 2'), "has version 2"),
        (lambda b: b.replace(b'"format": "k"', b'"format": "x"'), "expected 'k'"),
        (lambda b: pickle.dumps({"w": 1}), "not valid JSON"),
        (lambda b: b"", "not valid JSON"),
    ],
)
def test_damaged_artifact_is_refused_with_the_reason(tmp_path, damage, message):
    path = tmp_path / "a.json"
    artifact.write(path, "k", 1, {"w": [1.0], "n": 3})
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ArtifactError, match=message):
        artifact.read(path, "k", 1)


def test_missing_artifact_is_an_artifact_error(tmp_path):
    with pytest.raises(ArtifactError, match="cannot read"):
        artifact.read(tmp_path / "nope.json", "k", 1)


def test_non_finite_payload_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="non-finite"):
        artifact.write(tmp_path / "a.json", "k", 1, {"w": float("nan")})


def test_model_file_round_trip_and_predictions(tmp_path):
    model = LinearModel(np.array([1.0, -2.0]), 0.5, samples=10, method="sgd", metadata={"a": 1})
    write_model(tmp_path / "m.json", model)
    got = read_model(tmp_path / "m.json")
    assert got.weights.tolist() == [1.0, -2.0] and got.bias == 0.5 and got.samples == 10
    assert got.predict(np.array([[1.0, 1.0]])).tolist() == [-0.5]
    assert got.mse(np.array([[1.0, 1.0], [0.0, 0.0]]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["format"] == "streamtrain.model" and document["version"] == 1
