"""Shared helpers of the fault-injection tests (tests/integration/test_faults_*).

Faults are injected from outside, by timing: signals to real service
processes, a broker stopped and started on its data directory. Nothing
here reaches into a running service. The checks read back what is on the
topic and compare the services' results with an uninterrupted run
computed in-process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
from kafka import TopicPartition

from streamtrain import wire
from streamtrain.checkpoint import CheckpointStore
from streamtrain.clients import make_consumer
from streamtrain.errors import StreamtrainError
from streamtrain.learners import LearnerConfig, make_learner
from streamtrain.model import read_model
from streamtrain.settings import KafkaSettings
from tests.helpers import consume_all, produce_arrays

ROOT = Path(__file__).resolve().parents[1]


def leftover_writes(directory: Path) -> list[str]:
    """Temporary files of atomic writes that a kill interrupted
    (``streamtrain.artifact.write_atomic`` names them ``.<name>.*.tmp``)."""
    return sorted(p.name for p in Path(directory).glob(".*.tmp"))


def kill_inside_write(process: subprocess.Popen, directory: Path, timeout: float) -> bool:
    """SIGKILL ``process`` as soon as a checkpoint write is seen in progress
    (a temporary file in ``directory``), or at ``timeout`` seconds.

    Returns True if the kill was sent while a write was in progress; the
    write may still have completed before the signal landed, which
    :func:`leftover_writes` tells afterwards.
    """
    deadline = time.monotonic() + timeout
    directory = Path(directory)
    seen = False
    while time.monotonic() < deadline and process.poll() is None:
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            names = []
        if any(name.endswith(".tmp") for name in names):
            seen = True
            break
        time.sleep(0.0005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    return seen


def topic_samples(settings: KafkaSettings, topic: str, partitions: int, expected: int,
                  dim: int, timeout_s: float = 60) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The samples on ``topic``, per partition in offset order (X, y).

    Reads until ``expected`` records arrived (or the timeout) and then
    checks that exactly ``expected`` are there and all decode.
    """
    records = consume_all(settings, topic, partitions, expected, timeout_s=timeout_s)
    by_partition: dict[int, list] = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)
    result = {}
    for partition in range(partitions):
        ordered = sorted(by_partition[partition], key=lambda r: r.offset)
        batch = wire.decode_batch([r.value for r in ordered], dim)
        assert not batch.errors, f"partition {partition}: undecodable records {batch.errors}"
        result[partition] = (batch.X, batch.y)
    return result


def topic_size(settings: KafkaSettings, topic: str, partitions: int) -> int:
    """How many records ``topic`` holds (sum of the end offsets)."""
    consumer = make_consumer(settings)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def sample_ids(settings: KafkaSettings, topic: str, partitions: int, expected: int,
               dim: int) -> list[int]:
    """The wire ids of every record on ``topic`` (duplicates kept)."""
    records = consume_all(settings, topic, partitions, expected)
    return [wire.decode(r.value, dim).id for r in records]


def reference_states(per_partition: dict[int, tuple[np.ndarray, np.ndarray]],
                     config: LearnerConfig | None = None) -> dict[int, dict[str, Any]]:
    """Learner payloads of an uninterrupted run over each partition's
    samples in offset order, computed in-process (default learner settings
    unless ``config`` is given)."""
    config = config if config is not None else LearnerConfig()
    states = {}
    for partition, (X, y) in per_partition.items():
        learner = make_learner(config, X.shape[1])
        for x, target in zip(learner.rows(X), y.tolist()):
            learner.learn(x, target)
        states[partition] = learner.to_payload()
    return states


def assert_states_equal(store: CheckpointStore, expected: dict[int, dict[str, Any]]) -> None:
    """Every partition's checkpointed learner equals ``expected`` exactly
    (weights, bias, optimizer state, sample count, loss statistics)."""
    for partition, state in expected.items():
        loaded = store.load(partition)
        assert loaded.payload is not None, f"partition {partition} has no checkpoint"
        assert loaded.payload["learner"] == state, f"partition {partition} differs"
        assert loaded.payload["next_offset"] == state["samples"], partition


def start_service(log_path: Path, module: str, *args: str) -> subprocess.Popen:
    """Start ``python -m module args`` from the repository root; stdout and
    stderr go to ``log_path``, except for the producer (stdout is piped,
    it carries the JSON summary)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=ROOT,
            stdout=subprocess.PIPE if module == "producer" else log, stderr=log,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


def wait_for(condition: Callable[[], bool], timeout: float = 150.0, what: str = "") -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.02)


@dataclass
class LatestWatcher:
    """Reads ``models_dir/latest.json`` over and over in a thread while a
    fault is injected; every read must either find no file or load a
    model whose checksum verifies."""

    models_dir: Path
    reads: int = 0
    loaded: int = 0
    failures: list[str] = field(default_factory=list)
    samples_seen: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        latest = Path(self.models_dir) / "latest.json"
        while not self._stop.is_set():
            self.reads += 1
            if not os.path.lexists(latest):
                time.sleep(0.001)
                continue
            try:
                model = read_model(latest)
            except (StreamtrainError, OSError, ValueError) as error:
                self.failures.append(repr(error))
                continue
            self.loaded += 1
            self.samples_seen.add(model.samples)
            time.sleep(0.001)


class GatedProducer:
    """Produces ``X``/``y`` round robin over ``partitions`` in a thread, in
    chunks with a pause between them, but never beyond the number of
    chunks the test has released: the test decides how far the stream
    has got when it injects a fault, whatever the machine's speed."""

    def __init__(self, settings: KafkaSettings, topic: str, X: np.ndarray, y: np.ndarray,
                 partitions: int, chunk: int, pause: float = 0.2) -> None:
        assert chunk % partitions == 0, "a chunk must keep row i on partition i % partitions"
        self.settings, self.topic, self.X, self.y = settings, topic, X, y
        self.partitions, self.chunk, self.pause = partitions, chunk, pause
        self.released = 0
        self.produced = 0
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def chunks(self) -> int:
        return -(-len(self.y) // self.chunk)

    def release(self, chunks: int = 1) -> None:
        """Allow ``chunks`` more chunks to be produced."""
        with self._wake:
            self.released = min(self.chunks, self.released + chunks)
            self._wake.notify_all()

    def release_all(self) -> None:
        self.release(self.chunks)

    def join(self, timeout: float = 120.0) -> None:
        """Release everything and wait until every chunk was acknowledged."""
        self.release_all()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the producer thread did not finish"

    def _run(self) -> None:
        for index in range(self.chunks):
            with self._wake:
                self._wake.wait_for(lambda index=index: self.released > index)
            rows = slice(index * self.chunk, (index + 1) * self.chunk)
            produce_arrays(self.settings, self.topic, self.X[rows], self.y[rows],
                           partitions=self.partitions)
            self.produced = min(len(self.y), (index + 1) * self.chunk)
            time.sleep(self.pause)
