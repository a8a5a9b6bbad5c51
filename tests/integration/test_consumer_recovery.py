"""Crash recovery of ``python -m consumer`` as real processes: SIGKILL and
restart, and a group of two members where one dies mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


from streamtrain.checkpoint import CheckpointStore
from tests.helpers import produce_arrays
from tests.integration.test_consumer import reference, samples

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 3
CHUNK = 6000  # a multiple of PARTITIONS: row i always lands on partition i % 3


@pytest.fixture
def started():
    """Processes a test started; any still running at the end are killed."""
    processes = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def start(started, kafka_settings, topic, tmp_path, name, *flags):
    """Start a consumer process; its log goes to tmp_path/<name>.log."""
    command = [
        sys.executable, "-m", "consumer", "--bootstrap-servers",
        kafka_settings.bootstrap_servers, "--topic", topic, "--dead-letter-topic",
        topic + ".dlq", "--dim", "5", "--group-id", f"g-{topic}", "--checkpoint-dir",
        str(tmp_path / "ckpt"), "--session-timeout-ms", "6000", *flags,
    ]
    with open(tmp_path / f"{name}.log", "ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    started.append(process)
    return process


def produce_slowly(kafka_settings, topic, X, y, pause=0.3):
    """Produce in chunks with pauses, in a thread, so consumers read mid-stream."""
    def produce():
        for start_row in range(0, len(y), CHUNK):
            rows = slice(start_row, start_row + CHUNK)
            produce_arrays(kafka_settings, topic, X[rows], y[rows], partitions=PARTITIONS)
            time.sleep(pause)

    thread = threading.Thread(target=produce)
    thread.start()
    return thread


def checkpointed(store):
    """Total next offsets of the partition checkpoints on disk."""
    return sum(r.payload["next_offset"] for r in store.load_all().values() if r.payload)


def wait_for(condition, timeout=150.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def assert_exactly_once(store, X, y):
    expected = reference(X, y, PARTITIONS)
    total = 0
    for p in range(PARTITIONS):
        payload = store.load(p).payload
        assert payload["learner"] == expected[p], f"partition {p} differs"
        total += payload["learner"]["samples"]
    assert total == len(y)


def test_consumer_sigkill_and_restart_is_bit_for_bit(kafka_settings, make_topics, topic_name,
                                                     tmp_path, started):
    topic, _ = make_topics(topic_name, partitions=PARTITIONS)
    X, y = samples(8 * CHUNK, seed=7)
    store = CheckpointStore(tmp_path / "ckpt", topic)
    producer = produce_slowly(kafka_settings, topic, X, y)
    killed_at = []
    try:
        for threshold in (3000, 20000):
            process = start(started, kafka_settings, topic, tmp_path, "run",
                            "--checkpoint-every", "700")
            wait_for(lambda: checkpointed(store) >= threshold)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            killed_at.append(checkpointed(store))
    finally:
        producer.join()
    assert all(at < len(y) for at in killed_at), killed_at

    process = start(started, kafka_settings, topic, tmp_path, "run",
                    "--checkpoint-interval", "0.3")
    wait_for(lambda: checkpointed(store) == len(y))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0

    assert_exactly_once(store, X, y)


def test_consumer_two_members_one_killed_apply_every_sample_once(
        kafka_settings, make_topics, topic_name, tmp_path, started):
    topic, _ = make_topics(topic_name, partitions=PARTITIONS)
    X, y = samples(8 * CHUNK, seed=8)
    store = CheckpointStore(tmp_path / "ckpt", topic)
    first = start(started, kafka_settings, topic, tmp_path, "first",
                  "--checkpoint-every", "500")
    second = start(started, kafka_settings, topic, tmp_path, "second", "--checkpoint-every", "500",
                   "--until-idle", "10")
    producer = produce_slowly(kafka_settings, topic, X, y, pause=0.5)
    try:
        wait_for(lambda: "assigned" in (tmp_path / "first.log").read_text()
                 and "assigned" in (tmp_path / "second.log").read_text())
        wait_for(lambda: checkpointed(store) >= 12000)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = checkpointed(store)
    finally:
        producer.join()
    assert killed_at < len(y)

    assert second.wait(timeout=120) == 0
    assert_exactly_once(store, X, y)
    log = (tmp_path / "second.log").read_text()
    assert log.count("assigned topic=") >= 2, log
