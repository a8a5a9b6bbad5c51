import json

from consumer.__main__ import main
from consumer.inspect import describe
from streamtrain.checkpoint import CheckpointStore
from streamtrain.learners import LearnerConfig, make_learner


def test_consumer_inspect_prints_partitions_and_combined_model(tmp_path, capsys):
    store = CheckpointStore(tmp_path, "samples")
    for partition, weight in ((0, 1.0), (1, 3.0)):
        learner = make_learner(LearnerConfig(), 1)
        learner.weights, learner.samples, learner.squared_error_sum = [weight], 4, 2.0
        store.save(partition, 4, learner.to_payload())
    store.save(1, 9, make_learner(LearnerConfig(), 1).to_payload())
    store.latest_path(1).write_bytes(b"damaged")

    assert main(["inspect", "--checkpoint-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["partitions"]["0"]["weights"] == [1.0]
    assert report["partitions"]["0"]["mean_squared_error"] == 0.5
    assert len(report["partitions"]["1"]["skipped"]) == 1
    assert report["partitions"]["1"]["source"].endswith("partition-1.prev.json")
    assert report["combined"]["weights"] == [2.0] and report["combined"]["samples"] == 8


def test_consumer_inspect_damaged_without_previous_is_listed(tmp_path):
    store = CheckpointStore(tmp_path, "samples")
    store.save(0, 1, make_learner(LearnerConfig(), 1).to_payload())
    store.latest_path(0).write_bytes(b"{")
    report = describe(tmp_path)
    assert "weights" not in report["partitions"]["0"]
    assert "not valid JSON" in report["partitions"]["0"]["skipped"][0]
    assert report["combined"] is None


def test_consumer_inspect_missing_directory_exits_2(tmp_path):
    assert main(["inspect", "--checkpoint-dir", str(tmp_path / "nope")]) == 2
