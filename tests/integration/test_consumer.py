"""The online learner against a real broker, driven in-process."""

from __future__ import annotations

import json
import math
import struct
import threading
import time
import urllib.request

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from consumer import inspect
from consumer.app import run
from consumer.settings import ConsumerSettings, LearnerKind
from streamtrain import wire
from streamtrain.checkpoint import CheckpointStore
from streamtrain.deadletter import parse_headers
from streamtrain.errors import ConfigError
from streamtrain.learners import LearnerConfig, make_learner
from streamtrain.model import read_model
from tests.conftest import free_port
from tests.helpers import consume_all, produce_arrays, produce_values

TRUE_WEIGHTS = np.array([1.5, -2.0, 0.5, 3.0, -1.0])
TRUE_BIAS = 0.7


def samples(n, seed=0, noise=0.1, weights=TRUE_WEIGHTS):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(weights)))
    return X, X @ weights + TRUE_BIAS + noise * rng.normal(size=n)


def settings_for(kafka_settings, topic, dlq, tmp_path, **extra):
    values = dict(
        bootstrap_servers=kafka_settings.bootstrap_servers, topic=topic, dead_letter_topic=dlq,
        dim=len(TRUE_WEIGHTS), group_id=f"g-{topic}", checkpoint_dir=tmp_path / "ckpt",
        until_idle=2.0, session_timeout_ms=6000,
    )
    values.update(extra)
    return ConsumerSettings(**values)


def reference(X, y, partitions, config=LearnerConfig()):
    """Per-partition learner states of an uninterrupted run, computed locally."""
    states = {}
    for p in range(partitions):
        learner = make_learner(config, X.shape[1])
        for x, target in zip(learner.rows(X[p::partitions]), y[p::partitions].tolist()):
            learner.learn(x, target)
        states[p] = learner.to_payload()
    return states


def value(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


def test_consumer_converges_to_true_weights(kafka_settings, make_topics, topic_name, tmp_path):
    topic, dlq = make_topics(topic_name, partitions=3)
    X, y = samples(6000)
    produce_arrays(kafka_settings, topic, X, y, partitions=3)
    settings = settings_for(kafka_settings, topic, dlq, tmp_path, checkpoint_every=1000)

    summary = run(settings, registry=CollectorRegistry())

    assert summary.samples == 6000 and summary.rejected == 0
    model = read_model(tmp_path / "ckpt" / "model.json")
    assert model.samples == 6000 and model.method == "sgd"
    assert np.abs(model.weights - TRUE_WEIGHTS).max() < 0.05
    assert abs(model.bias - TRUE_BIAS) < 0.05
    assert model.metadata["partitions"]["2"] == {"samples": 2000, "next_offset": 2000}


def test_consumer_rls_matches_local_run_bit_for_bit(kafka_settings, make_topics, topic_name,
                                                    tmp_path):
    topic, dlq = make_topics(topic_name, partitions=2)
    X, y = samples(1000, seed=4)
    produce_arrays(kafka_settings, topic, X, y, partitions=2)
    settings = settings_for(kafka_settings, topic, dlq, tmp_path, learner="rls",
                            forgetting_factor=0.999, checkpoint_every=300)

    run(settings, registry=CollectorRegistry())

    expected = reference(X, y, 2, LearnerConfig(kind="rls", forgetting_factor=0.999))
    store = CheckpointStore(tmp_path / "ckpt", topic)
    for p in range(2):
        assert store.load(p).payload["learner"] == expected[p]
    model = read_model(tmp_path / "ckpt" / "model.json")
    assert np.abs(model.weights - TRUE_WEIGHTS).max() < 0.02


def test_consumer_metrics_endpoint_serves_correct_values(kafka_settings, make_topics,
                                                         topic_name, tmp_path):
    topic, dlq = make_topics(topic_name, partitions=2)
    X, y = samples(1000, seed=1)
    produce_arrays(kafka_settings, topic, X, y, partitions=2)
    produce_values(kafka_settings, topic, [b"garbage", b""], partitions=1)
    port = free_port()
    settings = settings_for(kafka_settings, topic, dlq, tmp_path, metrics_port=port,
                            metrics_address="127.0.0.1", until_idle=4.0, learning_rate=0.02)
    registry = CollectorRegistry()
    worker = threading.Thread(target=run, args=(settings,), kwargs={"registry": registry})
    worker.start()
    try:
        families = scrape_until(port, lambda f: all(
            f.get("streamtrain_online_samples_total", {}).get((("partition", p),)) == 500
            and f.get("streamtrain_consumer_lag_records", {}).get((("partition", p),)) == 0
            for p in ("0", "1")))
    finally:
        worker.join(timeout=60)

    expected = reference(X, y, 2, LearnerConfig(learning_rate=0.02))
    for p in ("0", "1"):
        state = expected[int(p)]
        assert families["streamtrain_online_samples_total"][(("partition", p),)] == 500
        assert families["streamtrain_online_squared_error_total"][(("partition", p),)] == (
            pytest.approx(state["squared_error_sum"], rel=1e-12))
        assert families["streamtrain_online_loss_smoothed"][(("partition", p),)] == (
            state["loss_smoothed"])
    assert families["streamtrain_consumer_lag_records"][(("partition", "0"),)] == 0
    assert families["streamtrain_consumer_lag_records"][(("partition", "1"),)] == 0
    dead = families["streamtrain_consumer_dead_letters_total"]
    assert dead[(("reason", "bad_magic"),)] == 0
    assert dead[(("reason", "truncated"),)] == 1 and dead[(("reason", "empty"),)] == 1
    assert families["streamtrain_consumer_update_seconds_count"][()] == 1000
    assert families["streamtrain_consumer_update_seconds_bucket"][(("le", "+Inf"),)] == 1000
    assert families["streamtrain_consumer_checkpoint_fallbacks_total"][()] == 0
    info = next(iter(families["streamtrain_consumer_info"]))
    assert ("kind", "sgd") in info and ("learning_rate", "0.02") in info
    # after the run: the final checkpoint is timed, the combined norm is set,
    # and the series of the revoked partitions are gone
    assert value(registry, "streamtrain_consumer_last_checkpoint_timestamp_seconds") > 1e9
    assert value(registry, "streamtrain_consumer_checkpoint_duration_seconds_count") >= 1
    model = read_model(tmp_path / "ckpt" / "model.json")
    norm = value(registry, "streamtrain_online_weights_norm")
    assert norm == pytest.approx(float(np.linalg.norm(model.weights)), rel=1e-12)
    assert registry.get_sample_value("streamtrain_online_samples_total",
                                     {"partition": "0"}) is None


def scrape_until(port, condition, timeout=60.0):
    """Scrape /metrics until ``condition(families)`` holds (a rebalance at
    start may briefly remove the partition series)."""
    deadline = time.monotonic() + timeout
    while True:
        families = scrape(port)
        if condition(families) or time.monotonic() > deadline:
            return families
        time.sleep(0.1)


def scrape(port):
    """Every sample of /metrics as {name: {labels tuple: value}}."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return {}
    found: dict = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    for name, series in found.items():
        for got in series.values():
            assert math.isfinite(got) or got == math.inf, f"{name} holds {got}"
    return found


def bad_messages(dim):
    """One message of every class the consumer must reject, with its reason."""
    good = wire.encode(np.ones(dim), 1.0)
    nan_sample = bytearray(good)
    struct.pack_into("<d", nan_sample, 24, float("nan"))
    return [
        (b"", "empty"),
        (b"\x00" * 10, "truncated"),
        (b"XX" + good[2:], "bad_magic"),
        (good[:2] + b"\x02" + good[3:], "unsupported_version"),
        (wire.encode(np.ones(dim + 1), 1.0), "wrong_dimension"),
        (good + b"\x00" * 8, "length_mismatch"),
        (bytes(nan_sample), "non_finite"),
        (wire.encode(np.ones(200), 1.0), "oversized"),
        (b"\x89PNG garbage bytes" * 3, "bad_magic"),
        (wire.encode(np.full(dim, 1e200), 1e300), "non_finite_update"),
    ]


def test_consumer_bad_input_goes_to_dead_letters_and_model_is_unchanged(
        kafka_settings, make_topics, topic_name, tmp_path):
    topic, dlq = make_topics(topic_name, partitions=1)
    dim = len(TRUE_WEIGHTS)
    X, y = samples(40, seed=2)
    good = wire.encode_many(X, y)
    bad = bad_messages(dim)
    values = good[:20] + [message for message, _ in bad] + good[20:]
    produce_values(kafka_settings, topic, values)
    registry = CollectorRegistry()
    settings = settings_for(kafka_settings, topic, dlq, tmp_path, max_message_bytes=1000)

    summary = run(settings, registry=registry)

    assert summary.samples == 40 and summary.rejected == len(bad)
    payload = CheckpointStore(tmp_path / "ckpt", topic).load(0).payload
    assert payload["learner"] == reference(X, y, 1)[0]
    assert payload["next_offset"] == len(values)
    letters = consume_all(kafka_settings, dlq, 1, expected=len(bad), timeout_s=30)
    assert len(letters) == len(bad)
    by_offset = {int(parse_headers(r.headers)["source.offset"]): r for r in letters}
    for i, (message, reason) in enumerate(bad):
        record = by_offset[20 + i]
        headers = parse_headers(record.headers)
        assert headers["reason"] == reason, headers
        assert record.value == message
        assert headers["source.topic"] == topic and headers["source.partition"] == "0"
    for reason in {reason for _, reason in bad}:
        count = sum(1 for _, r in bad if r == reason)
        assert value(registry, "streamtrain_consumer_dead_letters_total",
                     reason=reason) == count


def test_consumer_corrupt_checkpoint_falls_back_to_previous(kafka_settings, make_topics,
                                                            topic_name, tmp_path):
    topic, dlq = make_topics(topic_name, partitions=1)
    X, y = samples(900, seed=3)
    produce_arrays(kafka_settings, topic, X[:600], y[:600])
    settings = settings_for(kafka_settings, topic, dlq, tmp_path, checkpoint_every=200,
                            max_messages=400, until_idle=None)
    run(settings, registry=CollectorRegistry())
    store = CheckpointStore(tmp_path / "ckpt", topic)
    assert store.load(0).payload["next_offset"] == 400
    latest = store.latest_path(0)
    latest.write_bytes(latest.read_bytes()[:100])

    produce_arrays(kafka_settings, topic, X[600:], y[600:])
    registry = CollectorRegistry()
    run(settings.model_copy(update={"max_messages": None, "until_idle": 2.0}),
        registry=registry)

    assert value(registry, "streamtrain_consumer_checkpoint_fallbacks_total") == 1
    payload = store.load(0).payload
    assert payload["next_offset"] == 900
    assert payload["learner"] == reference(X, y, 1)[0]
    report = inspect.describe(tmp_path / "ckpt")
    assert report["partitions"]["0"]["samples"] == 900
    assert report["combined"]["samples"] == 900
    assert json.dumps(report)


def test_consumer_checkpoint_of_another_learner_stops_with_config_error(
        kafka_settings, make_topics, topic_name, tmp_path):
    topic, dlq = make_topics(topic_name, partitions=1)
    X, y = samples(50, seed=5)
    produce_arrays(kafka_settings, topic, X, y)
    settings = settings_for(kafka_settings, topic, dlq, tmp_path)
    run(settings, registry=CollectorRegistry())

    with pytest.raises(ConfigError, match="another --checkpoint-dir"):
        run(settings.model_copy(update={"learner": LearnerKind.RLS}),
            registry=CollectorRegistry())
    assert CheckpointStore(tmp_path / "ckpt", topic).load(0).payload["learner"] == (
        reference(X, y, 1)[0])
