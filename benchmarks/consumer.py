"""Throughput of the online learner through a real broker, against the raw
kafka-python consumer on the same topic in the same run.

Both readers use the same client settings: kafka-python's defaults
(``max_poll_records=500``, ``fetch_min_bytes=1``, ``fetch_max_wait_ms=500``,
``check_crcs=True``) with ``max_partition_fetch_bytes=1 MiB``, as
``python -m consumer`` configures it. The raw reader assigns the partitions
and only touches each value; the learner runs :func:`consumer.app.run` (group
membership, decoding, learning, metrics, dead letters, checkpoints every
10,000 messages). Each round reads raw, then each learner, back to back;
a raw group member (what the client costs with group membership, which
the learner needs) is read in each round too. The table gives medians over
rounds and the median of the per-round ratios to the assigned raw reader
of the rates (wall clock) and of the CPU time per message of the whole
process. The CPU ratio is the steadier one on a machine shared with other
work; the last column is a reader's CPU time per message minus raw's.

The per-sample update cost against River, scikit-learn and numpy is in
:mod:`benchmarks.update_cost`.

Run: ``.venv/bin/python -m benchmarks.consumer [--bootstrap-servers HOST:PORT]
[--samples N] [--dim D] [--rounds R] [--learners sgd ...]``. It creates a
topic named ``bench-consumer-<random>``, deletes it at the end and prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from kafka import TopicPartition
from prometheus_client import CollectorRegistry

from consumer.app import run
from consumer.settings import ConsumerSettings
from streamtrain import wire
from streamtrain.clients import make_admin, make_consumer, make_producer
from streamtrain.settings import KafkaSettings
from streamtrain.topics import dead_letter_topic, ensure_topics, sample_topic

PARTITIONS = 3
GROUP_ROW = "raw KafkaConsumer, group member (poll only)"
FETCH_BYTES = 1 << 20
"""``max_partition_fetch_bytes`` of ``python -m consumer`` at the default
message size limit (and kafka-python's default)."""


class TimedConsumer:
    """A consumer that notes when its first non-empty poll returned and when
    it was closed (after the learner's final checkpoint), by the wall clock
    and by this process's CPU time."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.first: float | None = None
        self.closed: float | None = None
        self.first_cpu = 0.0
        self.closed_cpu = 0.0

    def close(self) -> None:
        self.closed, self.closed_cpu = time.perf_counter(), time.process_time()
        self.inner.close()

    def poll(self, *args: Any, **kwargs: Any) -> dict:
        records = self.inner.poll(*args, **kwargs)
        if records and self.first is None:
            self.first, self.first_cpu = time.perf_counter(), time.process_time()
        return records

    def measured(self, n: int) -> Measured:
        """Messages per second and CPU microseconds per message."""
        return n / (self.closed - self.first), (self.closed_cpu - self.first_cpu) / n * 1e6

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


Measured = tuple[float, float]
"""Messages per second (wall clock) and CPU microseconds per message of the
whole process (all its threads), over the same window."""


def produce(settings: KafkaSettings, topic: str, n: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, dim))
    y = X @ np.linspace(-1, 1, dim) + 0.5 + 0.1 * rng.normal(size=n)
    producer = make_producer(settings, linger_ms=20, batch_size=256 * 1024)
    for i, value in enumerate(wire.encode_many(X, y)):
        producer.send(topic, value=value, partition=i % PARTITIONS)
    producer.flush()
    producer.close()


def raw_rate(settings: KafkaSettings, topic: str, n: int, group: bool = False) -> Measured:
    """A bare consumer that only touches each value: assigned to every
    partition, or (``group``) a member of a fresh consumer group with the
    learner's session and heartbeat settings, as ``python -m consumer`` is."""
    if group:
        consumer = TimedConsumer(make_consumer(
            settings, max_partition_fetch_bytes=FETCH_BYTES, group_id=f"bench-{uuid.uuid4().hex}",
            session_timeout_ms=10_000, heartbeat_interval_ms=2_500))
        consumer.subscribe([topic])
    else:
        consumer = TimedConsumer(make_consumer(settings, max_partition_fetch_bytes=FETCH_BYTES))
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
    seen, size = 0, 0
    while seen < n:
        for batch in consumer.poll(timeout_ms=500).values():
            seen += len(batch)
            size += sum(len(record.value) for record in batch)
    consumer.close()
    return consumer.measured(n)


def learner_rate(settings: KafkaSettings, topic: str, n: int, dim: int, kind: str,
                 **overrides: Any) -> Measured:
    """Messages per second of ``python -m consumer``'s loop, from the first
    returned record to the end of the final checkpoint (checkpoints included,
    group join and client shutdown not). ``overrides`` are further
    :class:`ConsumerSettings` fields."""
    made: list[TimedConsumer] = []

    def factory(config: ConsumerSettings, **overrides: Any) -> TimedConsumer:
        made.append(TimedConsumer(make_consumer(config, **overrides)))
        return made[-1]

    with tempfile.TemporaryDirectory() as directory:
        config = ConsumerSettings(
            bootstrap_servers=settings.bootstrap_servers, topic=topic,
            dead_letter_topic=topic + ".dlq", dim=dim, group_id=f"bench-{uuid.uuid4().hex}",
            checkpoint_dir=Path(directory), learner=kind, max_messages=n, **overrides)
        run(config, registry=CollectorRegistry(), consumer_factory=factory)
    return made[0].measured(n)


def create_topic(settings: KafkaSettings, n: int, dim: int) -> str:
    """A fresh topic of ``PARTITIONS`` partitions holding ``n`` samples, and its
    dead-letter topic (``<topic>.dlq``)."""
    topic = f"bench-consumer-{uuid.uuid4().hex[:8]}"
    admin = make_admin(settings)
    try:
        ensure_topics(admin, [sample_topic(topic, PARTITIONS), dead_letter_topic(topic + ".dlq")])
    finally:
        admin.close()
    produce(settings, topic, n, dim)
    return topic


def delete_topic(settings: KafkaSettings, topic: str) -> None:
    admin = make_admin(settings)
    try:
        admin.delete_topics([topic, topic + ".dlq"])
    finally:
        admin.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.consumer",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers",
                        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    parser.add_argument("--samples", type=int, default=150_000)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--learners", nargs="+", default=["sgd", "adagrad", "rls"],
                        choices=["sgd", "adagrad", "rls"])
    args = parser.parse_args(argv)
    settings = KafkaSettings(bootstrap_servers=args.bootstrap_servers)
    topic = create_topic(settings, args.samples, args.dim)
    raw: list[Measured] = []
    learned: dict[str, list[Measured]] = {GROUP_ROW: []}
    learned.update({kind: [] for kind in args.learners})
    try:
        for _ in range(args.rounds):
            raw.append(raw_rate(settings, topic, args.samples))
            learned[GROUP_ROW].append(raw_rate(settings, topic, args.samples, group=True))
            for kind in args.learners:
                learned[kind].append(learner_rate(settings, topic, args.samples, args.dim, kind))
    finally:
        delete_topic(settings, topic)
    print(throughput_table(args, raw, learned))


def throughput_table(args: argparse.Namespace, raw: list[Measured],
                     learned: dict[str, list[Measured]]) -> str:
    """Medians of the rates and CPU costs, and the medians of the per-round
    ratios (each round reads raw, then learns, back to back: the fairest
    pairing on a shared machine)."""
    lines = [
        (f"{args.samples} samples, {args.dim} features, {PARTITIONS} partitions, "
        f"median of {args.rounds} rounds\n"),
        ("| reader | messages/s | vs raw (wall clock) | CPU µs per message "
        "| vs raw (CPU) | CPU µs per message above raw |"),
        "|---|---|---|---|---|---|",
        (f"| raw KafkaConsumer, assigned (poll only) | {_median(raw, 0):,.0f} | 1.00 "
        f"| {_median(raw, 1):.1f} | 1.00 | |"),
    ]
    for kind, runs in learned.items():
        rate_ratio = statistics.median(run[0] / base[0] for run, base in zip(runs, raw))
        cpu_ratio = statistics.median(base[1] / run[1] for run, base in zip(runs, raw))
        own = statistics.median(run[1] - base[1] for run, base in zip(runs, raw))
        name = kind if kind == GROUP_ROW else f"python -m consumer --learner {kind}"
        lines.append(
            f"| {name} | {_median(runs, 0):,.0f} "
            f"| {rate_ratio:.2f} | {_median(runs, 1):.1f} | {cpu_ratio:.2f} | {own:.1f} |")
    return "\n".join(lines)


def _median(runs: list[Measured], field: int) -> float:
    return statistics.median(run[field] for run in runs)


if __name__ == "__main__":
    main()
