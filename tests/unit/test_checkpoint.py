import pytest

from streamtrain.checkpoint import CheckpointStore, StaleCheckpointError, combine
from streamtrain.learners import LearnerConfig, make_learner
from streamtrain.model import read_model


def learner_payload(weights, bias, samples):
    learner = make_learner(LearnerConfig(), len(weights))
    learner.weights, learner.bias, learner.samples = list(weights), bias, samples
    return learner.to_payload()


@pytest.fixture
def store(tmp_path):
    return CheckpointStore(tmp_path, "samples", clock=lambda: 1000.0)


def test_checkpoint_save_then_load_gives_payload_back(store):
    store.save(2, 17, learner_payload([0.1, -0.0], 0.3, 5))
    loaded = store.load(2)
    assert loaded.payload["next_offset"] == 17 and loaded.skipped == []
    assert loaded.payload["learner"]["weights"] == [0.1, -0.0]
    assert loaded.payload["written_at"] == 1000.0
    assert loaded.path == store.latest_path(2)


def test_checkpoint_second_save_keeps_previous(store):
    store.save(0, 10, learner_payload([1.0], 0.0, 10))
    store.save(0, 20, learner_payload([2.0], 0.0, 20))
    assert store.load(0).payload["next_offset"] == 20
    store.latest_path(0).unlink()
    assert store.load(0).payload["next_offset"] == 10


@pytest.mark.parametrize("damage", [
    lambda b: b[: len(b) // 3],
    lambda b: b.replace(b'"next_offset": 20', b'"next_offset": 21'),
    lambda b: b"",
    lambda b: b"\x80\x04garbage",
])
def test_checkpoint_damaged_latest_falls_back_to_previous(store, damage):
    store.save(0, 10, learner_payload([1.0], 0.0, 10))
    store.save(0, 20, learner_payload([2.0], 0.0, 20))
    path = store.latest_path(0)
    path.write_bytes(damage(path.read_bytes()))
    loaded = store.load(0)
    assert loaded.payload["next_offset"] == 10
    assert loaded.path == store.previous_path(0)
    assert len(loaded.skipped) == 1


def test_checkpoint_damaged_latest_is_not_kept_as_previous(store):
    store.save(0, 10, learner_payload([1.0], 0.0, 10))
    store.save(0, 20, learner_payload([2.0], 0.0, 20))
    store.latest_path(0).write_bytes(b"{")
    store.save(0, 30, learner_payload([3.0], 0.0, 30))
    store.latest_path(0).write_bytes(b"{")
    assert store.load(0).payload["next_offset"] == 10


def test_checkpoint_missing_gives_none(store):
    loaded = store.load(5)
    assert loaded.payload is None and loaded.path is None and loaded.skipped == []


def test_checkpoint_lower_offset_than_on_disk_is_refused(store):
    store.save(1, 50, learner_payload([1.0], 0.0, 50))
    with pytest.raises(StaleCheckpointError, match="offset 50.*40"):
        store.save(1, 40, learner_payload([9.0], 0.0, 40))
    assert store.load(1).payload["next_offset"] == 50


def test_checkpoint_of_another_topic_is_skipped(tmp_path):
    CheckpointStore(tmp_path, "other").save(0, 5, learner_payload([1.0], 0.0, 5))
    loaded = CheckpointStore(tmp_path, "samples").load(0)
    assert loaded.payload is None and "expected topic=samples" in loaded.skipped[0]


def test_checkpoint_write_leaves_no_temporary_files(store, tmp_path):
    for offset in range(5):
        store.save(0, offset, learner_payload([1.0], 0.0, offset))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["partition-0.json", "partition-0.prev.json"]


def test_combine_is_sample_weighted_average():
    payloads = {
        0: {"topic": "t", "next_offset": 3, "learner": learner_payload([1.0, 0.0], 1.0, 1)},
        1: {"topic": "t", "next_offset": 9, "learner": learner_payload([4.0, 2.0], 3.0, 3)},
    }
    model = combine(payloads, "sgd")
    assert model.weights.tolist() == [3.25, 1.5] and model.bias == 2.5
    assert model.samples == 4 and model.method == "sgd"
    assert model.metadata["partitions"]["1"] == {"samples": 3, "next_offset": 9}


def test_combine_without_samples_gives_none():
    payloads = {0: {"topic": "t", "next_offset": 0, "learner": learner_payload([1.0], 0.0, 0)}}
    assert combine(payloads, "sgd") is None


def test_checkpoint_write_combined_writes_model_file(store, tmp_path):
    store.save(0, 2, learner_payload([2.0], 0.0, 2))
    store.save(1, 2, learner_payload([4.0], 0.0, 2))
    store.write_combined("sgd")
    model = read_model(tmp_path / "model.json")
    assert model.weights.tolist() == [3.0] and model.samples == 4
