"""The batch job against a real broker (and a real Pushgateway).

Tolerance: the batch weights equal numpy.linalg.lstsq on the same samples
to a relative 1e-9 (the data here is well conditioned; the ill-conditioned
comparison is in tests/unit/test_leastsquares.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from kafka import TopicPartition

from batch_job.job import run_once
from batch_job.settings import BatchSettings, Method
from streamtrain import wire
from streamtrain.clients import make_producer
from streamtrain.model import LinearModel, read_model, write_model
from tests.helpers import consume_all, produce_arrays, produce_values
from tests.integration.conftest_batch import pushgateway, scrape  # noqa: F401 (fixture)

DIM = 4
TRUE_W = np.array([1.5, -2.0, 0.25, 3.0])


def samples(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, DIM)) * [1, 2, 3, 4]
    return X, X @ TRUE_W + 0.5 + 0.1 * rng.normal(size=n)


def lstsq(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    theta, *_ = np.linalg.lstsq(np.column_stack([X, np.ones(len(y))]), y, rcond=None)
    return theta[:-1], float(theta[-1])


def settings_for(kafka_settings, topic: str, tmp_path: Path, **extra) -> BatchSettings:
    return BatchSettings(
        bootstrap_servers=kafka_settings.bootstrap_servers, topic=topic,
        dead_letter_topic=topic + ".dlq", dim=DIM, models_dir=str(tmp_path / "models"),
        idle_timeout_s=20.0, **extra,
    )


def test_run_producer_keeps_writing_replay_stops_at_snapshot_and_matches_lstsq(
    kafka_settings, make_topics, topic_name, tmp_path
):
    topic, _ = make_topics(topic_name, partitions=3)
    X, y = samples(1500)
    produce_arrays(kafka_settings, topic, X, y, partitions=3)
    stop = threading.Event()
    writer = threading.Thread(target=_keep_writing, args=(kafka_settings, topic, stop))
    writer.start()
    try:
        time.sleep(1.0)
        report = run_once(settings_for(kafka_settings, topic, tmp_path))
    finally:
        stop.set()
        writer.join(timeout=30)

    offsets = report.model.metadata["offsets"]
    ends = {o["partition"]: o["end"] for o in offsets}
    assert all(o["last_offset"] == o["end"] - 1 for o in offsets)
    assert report.model.samples == sum(ends.values()) > 1500
    X_seen, y_seen = _read_below(kafka_settings, topic, ends)
    assert len(y_seen) == report.model.samples
    weights, bias = lstsq(X_seen, y_seen)
    np.testing.assert_allclose(report.model.weights, weights, rtol=1e-9)
    assert report.model.bias == pytest.approx(bias, rel=1e-9)


def _keep_writing(kafka_settings, topic: str, stop: threading.Event) -> None:
    producer = make_producer(kafka_settings)
    batch = 0
    while not stop.is_set():
        X, y = samples(50, seed=100 + batch)
        for i, value in enumerate(wire.encode_many(X, y)):
            producer.send(topic, value=value, partition=i % 3)
        producer.flush()
        batch += 1
    producer.close()


def _read_below(kafka_settings, topic, ends: dict[int, int]):
    """Every sample below the snapshot, read back independently."""
    records = consume_all(kafka_settings, topic, len(ends), expected=sum(ends.values()) + 10**9,
                          timeout_s=8)
    kept = [r for r in records if r.offset < ends[r.partition]]
    batch = wire.decode_batch([r.value for r in kept], DIM)
    return batch.X, batch.y


def test_run_invalid_messages_are_skipped_and_counted_by_reason(
    kafka_settings, make_topics, topic_name, tmp_path
):
    topic, _ = make_topics(topic_name, partitions=2)
    X, y = samples(400, seed=1)
    good = wire.encode_many(X, y)
    bad = [b"", b"ST\x01", b"XX" + good[0][2:], wire.encode(np.zeros(DIM + 1), 1.0),
           good[0][:24] + np.float64(np.nan).tobytes() + good[0][32:]]
    produce_values(kafka_settings, topic, good[:200] + bad + good[200:], partitions=2)

    report = run_once(settings_for(kafka_settings, topic, tmp_path))

    assert report.model.samples == 400
    assert report.model.metadata["rejected"] == {
        "bad_magic": 1, "empty": 1, "non_finite": 1, "truncated": 1, "wrong_dimension": 1,
    }
    weights, bias = lstsq(X, y)
    np.testing.assert_allclose(report.model.weights, weights, rtol=1e-9)


def test_run_online_model_mse_is_reported_beside_batch_mse(
    kafka_settings, make_topics, topic_name, tmp_path
):
    topic, _ = make_topics(topic_name)
    X, y = samples(500, seed=2)
    produce_arrays(kafka_settings, topic, X, y)
    online = LinearModel(TRUE_W + 0.1, 0.3, 123, "sgd")
    write_model(tmp_path / "online.json", online)

    report = run_once(settings_for(kafka_settings, topic, tmp_path,
                                   online_model=str(tmp_path / "online.json")))

    meta = report.model.metadata
    assert meta["online_mse"] == pytest.approx(online.mse(X, y), rel=1e-9)
    assert meta["mse"] == pytest.approx(report.model.mse(X, y), rel=1e-9)
    assert meta["online_mse_gap"] == pytest.approx(meta["online_mse"] - meta["mse"])
    assert meta["online_mse"] > meta["mse"]
    assert meta["online_weights_distance"] == pytest.approx(
        np.linalg.norm(np.append(online.weights - report.model.weights,
                                 online.bias - report.model.bias)))


def test_run_damaged_or_missing_online_model_gives_no_online_mse(
    kafka_settings, make_topics, topic_name, tmp_path, caplog
):
    topic, _ = make_topics(topic_name)
    produce_arrays(kafka_settings, topic, *samples(100, seed=3))
    damaged = tmp_path / "damaged.json"
    damaged.write_text('{"format": "streamtrain.model", "payl')

    report = run_once(settings_for(kafka_settings, topic, tmp_path, online_model=str(damaged)))
    missing = run_once(settings_for(kafka_settings, topic, tmp_path,
                                    online_model=str(tmp_path / "absent.json")))

    assert report.evaluation.online_mse is None and missing.evaluation.online_mse is None
    assert "online model ignored" in caplog.text


def test_run_twice_over_same_offsets_is_bit_identical_whatever_the_workers(
    kafka_settings, make_topics, topic_name, tmp_path
):
    topic, _ = make_topics(topic_name, partitions=3)
    produce_arrays(kafka_settings, topic, *samples(3000, seed=4), partitions=3)

    first = run_once(settings_for(kafka_settings, topic, tmp_path, workers=1, block_rows=256))
    second = run_once(settings_for(kafka_settings, topic, tmp_path, workers=3, block_rows=256))

    assert first.model.weights.tobytes() == second.model.weights.tobytes()
    assert np.float64(first.model.bias).tobytes() == np.float64(second.model.bias).tobytes()
    assert first.path != second.path
    latest = read_model(tmp_path / "models" / "latest.json")
    assert latest.weights.tobytes() == second.model.weights.tobytes()
    assert latest.metadata["started_at"] == second.model.metadata["started_at"]


def test_run_gd_on_same_statistics_approaches_exact_solution(
    kafka_settings, make_topics, topic_name, tmp_path
):
    topic, _ = make_topics(topic_name)
    X, y = samples(800, seed=5)
    produce_arrays(kafka_settings, topic, X, y)
    report = run_once(settings_for(kafka_settings, topic, tmp_path, method=Method.GD,
                                   gd_steps=3000, gd_learning_rate=0.02))
    weights, _ = lstsq(X, y)
    assert report.model.method == "gd"
    np.testing.assert_allclose(report.model.weights, weights, rtol=1e-6)


def test_run_pushes_metrics_and_failure_keeps_last_success(
    kafka_settings, make_topics, topic_name, tmp_path, pushgateway  # noqa: F811
):
    topic, _ = make_topics(topic_name, partitions=2)
    X, y = samples(300, seed=6)
    produce_values(kafka_settings, topic, wire.encode_many(X, y) + [b"junk"], partitions=2)
    write_model(tmp_path / "online.json", LinearModel(TRUE_W, 0.0, 1, "sgd"))
    settings = settings_for(kafka_settings, topic, tmp_path, pushgateway=pushgateway,
                            online_model=str(tmp_path / "online.json"))

    report = run_once(settings)
    pushed = scrape(pushgateway)
    job = "instance=,job=streamtrain_batch"
    success_ts = pushed[f"streamtrain_batch_last_success_timestamp_seconds{{{job}}}"]
    assert success_ts == pytest.approx(time.time(), abs=60)
    assert pushed[f"streamtrain_batch_samples{{{job}}}"] == 300
    assert pushed[f"streamtrain_batch_rejected_samples{{{job},reason=truncated}}"] == 1
    assert pushed[f"streamtrain_batch_mse{{{job}}}"] == pytest.approx(report.evaluation.mse)
    assert pushed[f"streamtrain_batch_online_mse{{{job}}}"] == pytest.approx(
        report.evaluation.online_mse)
    assert f"streamtrain_batch_online_weights_distance{{{job}}}" in pushed
    assert pushed[f"streamtrain_batch_duration_seconds{{{job}}}"] > 0

    broken = settings_for(kafka_settings, topic + "-missing", tmp_path, pushgateway=pushgateway)
    with pytest.raises(Exception, match="does not exist"):
        run_once(broken)
    after = scrape(pushgateway)
    assert after[f"streamtrain_batch_last_success_timestamp_seconds{{{job}}}"] == success_ts
    assert after[f"streamtrain_batch_last_failure_timestamp_seconds{{{job}}}"] >= success_ts
    assert after[f"streamtrain_batch_samples{{{job}}}"] == 300


def test_command_run_failure_exits_nonzero_with_clear_message(kafka_settings, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "batch_job", "run", "--topic", "no-such-topic-here",
         "--bootstrap-servers", kafka_settings.bootstrap_servers,
         "--models-dir", str(tmp_path / "models")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "batch run failed: topic 'no-such-topic-here' does not exist" in result.stderr
    assert not (tmp_path / "models" / "latest.json").exists()


def test_command_schedule_runs_twice_and_stops_on_sigterm(
    kafka_settings, make_topics, topic_name, tmp_path
):
    topic, _ = make_topics(topic_name)
    produce_arrays(kafka_settings, topic, *samples(200, seed=7))
    models = tmp_path / "models"
    process = subprocess.Popen(
        [sys.executable, "-m", "batch_job", "schedule", "--every", "1s", "--topic", topic,
         "--dim", str(DIM), "--bootstrap-servers", kafka_settings.bootstrap_servers,
         "--models-dir", str(models)],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 90
        while len(list(models.glob("model-*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert len(list(models.glob("model-*.json"))) >= 2
    assert process.returncode == 0
    assert stderr.count("next run due at") >= 2
    assert "received SIGTERM" in stderr
    assert "scheduler stopped after" in stderr


def test_run_transactional_topic_stops_at_marker_and_skips_aborted(
    kafka_settings, make_topics, topic_name, tmp_path
):
    topic, _ = make_topics(topic_name)
    X, y = samples(300, seed=8)
    values = wire.encode_many(X, y)
    producer = make_producer(kafka_settings, transactional_id=f"tx-{topic_name}")
    try:
        producer.init_transactions()
        for committed, chunk in ((True, values[:200]), (False, values[200:250]),
                                 (True, values[250:])):
            producer.begin_transaction()
            for value in chunk:
                producer.send(topic, value=value, partition=0)
            producer.flush()
            if committed:
                producer.commit_transaction()
            else:
                producer.abort_transaction()
    finally:
        producer.close()

    report = run_once(settings_for(kafka_settings, topic, tmp_path))

    (offsets,) = report.model.metadata["offsets"]
    assert report.model.samples == 250
    assert offsets["last_offset"] < offsets["end"] - 1
    kept = np.r_[0:200, 250:300]
    weights, _ = lstsq(X[kept], y[kept])
    np.testing.assert_allclose(report.model.weights, weights, rtol=1e-9)
