"""The producer against a real broker: what it says it sent is on the topic."""

import io
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from kafka.admin import NewTopic
from prometheus_client import CollectorRegistry

from producer.app import main
from producer.synthetic import SyntheticStream
from producer.truth import read_truth, weights_at
from streamtrain import wire
from streamtrain.clients import make_admin
from tests.conftest import free_port
from tests.helpers import consume_all

REPO = Path(__file__).resolve().parents[2]


def _run(kafka_settings, *argv, registry=None):
    """Run the producer in-process; return (exit code, JSON report, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["--bootstrap-servers", kafka_settings.bootstrap_servers, "--progress", "off", *argv]
    code = main(argv, registry=registry, stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    return code, (json.loads(lines[-1]) if lines else None), err.getvalue()


def _by_id(records, dim):
    samples = [wire.decode(r.value, dim) for r in records]
    return sorted(samples, key=lambda s: s.id)


def test_producer_count_n_all_on_topic_with_synthetic_content(kafka_settings, topic_name):
    registry = CollectorRegistry()
    code, report, _ = _run(
        kafka_settings, "--topic", topic_name, "--dim", "4", "--count", "3000", "--seed", "11",
        "--partitions", "3", registry=registry,
    )
    assert code == 0
    assert (report["sent"], report["acknowledged"], report["failed"]) == (3000, 3000, 0)
    samples = _by_id(consume_all(kafka_settings, topic_name, 3, expected=3000), 4)
    assert [s.id for s in samples] == list(range(3000))
    X, y = SyntheticStream(4, 11).next_block(3000)
    assert np.array_equal(np.array([s.x for s in samples]), X)
    assert np.array_equal(np.array([s.y for s in samples]), y)
    assert all(s.event_time_ms > 1_600_000_000_000 for s in samples)
    assert registry.get_sample_value("streamtrain_producer_samples_acked_total") == 3000
    assert registry.get_sample_value("streamtrain_producer_send_errors_total") == 0


def test_producer_same_seed_same_bytes(kafka_settings, topic_name):
    runs = []
    for suffix in ("a", "b"):
        topic = f"{topic_name}-{suffix}"
        code, _, _ = _run(
            kafka_settings, "--topic", topic, "--count", "500", "--seed", "7",
            "--partitions", "1", "--event-time", "1700000000000", "--dim", "3",
        )
        assert code == 0
        runs.append([r.value for r in consume_all(kafka_settings, topic, 1, expected=500)])
    assert len(runs[0]) == 500 and runs[0] == runs[1]


def test_producer_abrupt_drift_changes_truth_where_file_says(kafka_settings, topic_name, tmp_path):
    truth_path = tmp_path / "truth.json"
    code, _, _ = _run(
        kafka_settings, "--topic", topic_name, "--count", "400", "--dim", "3", "--seed", "2",
        "--drift", "abrupt", "--drift-at", "250", "--noise", "0", "--partitions", "1",
        "--truth-file", str(truth_path),
    )
    assert code == 0
    truth = read_truth(truth_path)
    assert [s["from"] for s in truth["segments"]] == [0, 250] and truth["samples"] == 400
    samples = _by_id(consume_all(kafka_settings, topic_name, 1, expected=400), 3)
    for sample in samples:
        w, b = weights_at(truth, sample.id)
        assert abs(sample.y - (sample.x @ w + b)) < 1e-9
    old = truth["segments"][0]
    after_drift = samples[300]
    assert abs(after_drift.y - (after_drift.x @ np.array(old["weights"]) + old["bias"])) > 1e-3


def test_producer_gradual_drift_truth_has_segment_every_n(kafka_settings, topic_name, tmp_path):
    truth_path = tmp_path / "truth.json"
    code, _, _ = _run(
        kafka_settings, "--topic", topic_name, "--count", "1000", "--dim", "2",
        "--drift", "gradual", "--truth-every", "200", "--noise", "0", "--partitions", "1",
        "--truth-file", str(truth_path),
    )
    assert code == 0
    truth = read_truth(truth_path)
    assert [s["from"] for s in truth["segments"]] == [0, 200, 400, 600, 800]
    samples = _by_id(consume_all(kafka_settings, topic_name, 1, expected=1000), 2)
    errors = [abs(s.y - (s.x @ weights_at(truth, s.id)[0] + weights_at(truth, s.id)[1]))
              for s in samples]
    assert max(errors) < 1e-9


def test_producer_round_robin_puts_sample_i_on_partition_i_mod_p(kafka_settings, topic_name):
    code, _, _ = _run(
        kafka_settings, "--topic", topic_name, "--count", "60", "--dim", "2",
        "--key", "round-robin", "--partitions", "3",
    )
    assert code == 0
    records = consume_all(kafka_settings, topic_name, 3, expected=60)
    assert all(wire.decode(r.value, 2).id % 3 == r.partition for r in records)


def test_producer_existing_topic_is_used_as_it_is(kafka_settings, topic_name, make_topics):
    make_topics(topic_name, partitions=1)
    code, report, _ = _run(kafka_settings, "--topic", topic_name, "--count", "10", "--dim", "2")
    assert code == 0 and report["acknowledged"] == 10


def test_producer_rejected_by_broker_exits_1_saying_how_many(kafka_settings, topic_name):
    admin = make_admin(kafka_settings)
    try:
        small = NewTopic(topic_name, 1, 1, topic_configs={"max.message.bytes": "300"})
        admin.create_topics([small])
    finally:
        admin.close()
    code, report, err = _run(kafka_settings, "--topic", topic_name, "--count", "50", "--dim", "100")
    assert code == 1
    assert report["failed"] == report["sent"] > 0 and report["acknowledged"] == 0
    assert "were NOT delivered" in err


def test_producer_sigterm_flushes_and_reports_what_was_accepted(kafka_settings, topic_name):
    process = subprocess.Popen(
        [sys.executable, "-m", "producer", "--bootstrap-servers", kafka_settings.bootstrap_servers,
         "--topic", topic_name, "--dim", "3", "--rate", "2000", "--partitions", "1",
         "--progress", "log", "--progress-interval", "0.2"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for_progress(process)
        process.terminate()
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    report = json.loads(out.splitlines()[-1])
    assert report["stopped_by"] == "SIGTERM"
    assert report["sent"] == report["acknowledged"] > 0 and report["failed"] == 0
    records = consume_all(kafka_settings, topic_name, 1, expected=report["sent"], timeout_s=30)
    assert sorted(wire.decode(r.value, 3).id for r in records) == list(range(report["sent"]))


def test_producer_metrics_port_serves_the_counters(kafka_settings, topic_name):
    port = free_port()
    code, _, _ = _run(
        kafka_settings, "--topic", topic_name, "--count", "40", "--dim", "2",
        "--metrics-port", str(port), "--metrics-address", "127.0.0.1",
    )
    assert code == 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert "streamtrain_producer_samples_sent_total 40.0" in text
    assert "streamtrain_producer_samples_acked_total 40.0" in text
    assert "streamtrain_producer_send_errors_total 0.0" in text
    assert 'streamtrain_producer_send_latency_seconds_count 3.0' in text


def _wait_for_progress(process, timeout_s=60):
    """Return once the producer has logged a progress line."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "sent=" in line and "sent=0 " not in line:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError("the producer logged no progress")
