"""Fault: the broker stops mid-stream and starts again on the same data.

The test runs its own single-node broker (``streamtrain.localkafka`` on a
free port and a fresh data directory), never the shared one. A paced
``python -m producer`` and a ``python -m consumer`` run against it while
the broker is stopped (SIGTERM, a controlled shutdown) and restarted.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_job.job import run_once
from batch_job.settings import BatchSettings
from streamtrain import localkafka
from streamtrain.checkpoint import CheckpointStore
from streamtrain.clients import make_admin
from streamtrain.settings import KafkaSettings
from streamtrain.topics import dead_letter_topic, ensure_topics, sample_topic
from tests.conftest import free_port
from tests.faults import (
    assert_states_equal,
    reference_states,
    sample_ids,
    start_service,
    topic_samples,
    topic_size,
    wait_for,
)
from tests.integration.test_consumer_recovery import checkpointed

DIM = 5
PARTITIONS = 3
COUNT = 24_000
RATE = 800
TOPIC = "samples-restart"


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[KafkaSettings, Path, int]]:
    """A broker of this test alone: (settings, data directory, port)."""
    data_dir, port = tmp_path / "broker", free_port()
    info = localkafka.up(port=port, data_dir=data_dir)
    try:
        yield KafkaSettings(bootstrap_servers=info.bootstrap), data_dir, port
    finally:
        localkafka.down(data_dir)


def create_topic(settings: KafkaSettings) -> None:
    admin = make_admin(settings)
    try:
        ensure_topics(admin, [sample_topic(TOPIC, PARTITIONS), dead_letter_topic(TOPIC + ".dlq")])
    finally:
        admin.close()


def start_producer(settings: KafkaSettings, tmp_path: Path):
    return start_service(
        tmp_path / "producer.log", "producer", "--bootstrap-servers",
        settings.bootstrap_servers, "--topic", TOPIC, "--dim", str(DIM), "--count", str(COUNT),
        "--rate", str(RATE), "--key", "round-robin", "--seed", "3", "--progress", "log",
        "--progress-interval", "2",
    )


def start_consumer(settings: KafkaSettings, tmp_path: Path):
    return start_service(
        tmp_path / "consumer.log", "consumer", "--bootstrap-servers",
        settings.bootstrap_servers, "--topic", TOPIC, "--dead-letter-topic", TOPIC + ".dlq",
        "--dim", str(DIM), "--group-id", "restart", "--checkpoint-dir", str(tmp_path / "ckpt"),
        "--session-timeout-ms", "6000", "--checkpoint-every", "500",
        "--checkpoint-interval", "0.5",
    )


def restart_broker(data_dir: Path, port: int, down_s: float, crash: bool) -> None:
    """Stop the broker (cleanly, or SIGKILL if ``crash``), keep it down
    ``down_s`` s, start it again on the same data directory and port."""
    assert (localkafka.kill if crash else localkafka.down)(data_dir)
    time.sleep(down_s)
    info = localkafka.up(port=port, data_dir=data_dir)
    assert info.port == port


def test_faults_broker_restart_loses_nothing_and_duplicates_nothing(own_broker, tmp_path):
    """Injects: a stop of the (test's own) broker while a paced producer
    and a consumer run, 3 s of downtime, and a start on the same data
    directory. Checks: the producer exits 0 and its acknowledged count
    equals COUNT, the records on the topic (ids 0..COUNT-1, each once)
    and the samples the consumer learned; every partition model equals
    an in-process run over the topic's records bit for bit; a batch job
    run afterwards trains on every sample."""
    run_restart(own_broker, tmp_path, down_s=3.0, crash=False)


@pytest.mark.slow
def test_faults_broker_crash_and_long_outage_loses_nothing(own_broker, tmp_path):
    """Injects: a SIGKILL of the test's own broker (a crash, no controlled
    shutdown) mid-stream and 30 s of downtime before it starts again on
    the same data directory. Checks: the same as the clean restart: no
    acknowledged sample lost, none duplicated on the topic or in the
    models, the batch job sees every sample."""
    run_restart(own_broker, tmp_path, down_s=30.0, crash=True)


def run_restart(own_broker, tmp_path: Path, down_s: float, crash: bool) -> None:
    settings, data_dir, port = own_broker
    create_topic(settings)
    store = CheckpointStore(tmp_path / "ckpt", TOPIC)
    consumer = start_consumer(settings, tmp_path)
    producer = start_producer(settings, tmp_path)
    try:
        wait_for(lambda: checkpointed(store) >= 3000, what="the consumer to learn")
        restart_broker(data_dir, port, down_s, crash)
        output, _ = producer.communicate(timeout=240)
        check_delivery(settings, output, producer.returncode)
        check_learning(settings, store, consumer)
    finally:
        for process in (producer, consumer):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    check_batch(settings, tmp_path)


def check_delivery(settings: KafkaSettings, output: bytes, returncode: int) -> None:
    """The producer acknowledged COUNT samples; the topic holds each once."""
    report = json.loads(output.decode().strip().splitlines()[-1])
    assert returncode == 0, report
    assert report["acknowledged"] == report["sent"] == COUNT, report

    assert topic_size(settings, TOPIC, PARTITIONS) == COUNT
    ids = sample_ids(settings, TOPIC, PARTITIONS, COUNT, DIM)
    assert len(ids) == COUNT and sorted(ids) == list(range(COUNT))


def check_learning(settings: KafkaSettings, store: CheckpointStore, consumer) -> None:
    """The consumer learned every record once: bit-identical models."""
    wait_for(lambda: checkpointed(store) == COUNT, timeout=120, what="the consumer to catch up")
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=60) == 0
    per_partition = topic_samples(settings, TOPIC, PARTITIONS, COUNT, DIM)
    assert_states_equal(store, reference_states(per_partition))


def check_batch(settings: KafkaSettings, tmp_path: Path) -> None:
    """A batch run after the recovery trains on every sample."""
    batch = run_once(BatchSettings(
        bootstrap_servers=settings.bootstrap_servers, topic=TOPIC, dim=DIM,
        models_dir=str(tmp_path / "models"), idle_timeout_s=30.0))
    assert batch.model.samples == COUNT


class UnreachableBroker:
    """A consumer whose first ``failures`` polls fail as kafka-python's do
    while the broker is down (retriable connection errors)."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.polls = failures, error, 0

    def poll(self, timeout_ms: int) -> dict:
        self.polls += 1
        if self.polls <= self.failures:
            raise self.error
        return {"records": ["r"]}


def test_faults_consumer_poll_retriable_errors_are_retried_not_fatal(tmp_path):
    """Injects: five polls that raise KafkaConnectionError (what the
    client raises while the broker is unreachable), then a non-retriable
    error. Checks: each failed poll returns no records after a pause that
    grows, the sixth poll returns the records; a non-retriable error
    propagates."""
    from kafka.errors import CommitFailedError, KafkaConnectionError

    from consumer.app import RETRY_MAX_S, Loop
    from consumer.settings import ConsumerSettings

    pauses: list[float] = []

    class RecordingStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            pauses.append(timeout)
            return False

    settings = ConsumerSettings(topic="t", checkpoint_dir=tmp_path)
    broker = UnreachableBroker(5, KafkaConnectionError("111 ECONNREFUSED"))
    loop = Loop(settings, worker=None, consumer=broker, stop=RecordingStop(), clock=lambda: 0.0)
    assert [loop.poll() for _ in range(6)] == [{}] * 5 + [{"records": ["r"]}]
    assert pauses == [0.2, 0.4, 0.8, 1.6, 3.2] and max(pauses) <= RETRY_MAX_S
    assert loop.failed_polls == 0

    loop.consumer = UnreachableBroker(1, CommitFailedError("not retriable"))
    with pytest.raises(CommitFailedError):
        loop.poll()
