"""Throughput of the online learner through a real broker, against the raw
kafka-python consumer on the same topic in the same run, and the cost of
one update against River's ``LinearRegression.learn_one``.

Run: ``.venv/bin/python -m benchmarks.consumer [--bootstrap-servers HOST:PORT]
[--samples N] [--dim D]``. It creates a topic named ``bench-consumer-<random>``
and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
from kafka import TopicPartition
from prometheus_client import CollectorRegistry

from consumer.app import run
from consumer.settings import ConsumerSettings
from streamtrain import wire
from streamtrain.clients import make_admin, make_consumer, make_producer
from streamtrain.learners import LearnerConfig, make_learner
from streamtrain.settings import KafkaSettings
from streamtrain.topics import dead_letter_topic, ensure_topics, sample_topic

PARTITIONS = 3


class TimedConsumer:
    """A consumer that notes when its first non-empty poll returned and when
    it was closed (after the learner's final checkpoint)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.first: float | None = None
        self.closed: float | None = None

    def close(self) -> None:
        self.closed = time.perf_counter()
        self.inner.close()

    def poll(self, *args: Any, **kwargs: Any) -> dict:
        records = self.inner.poll(*args, **kwargs)
        if records and self.first is None:
            self.first = time.perf_counter()
        return records

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def produce(settings: KafkaSettings, topic: str, n: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, dim))
    y = X @ np.linspace(-1, 1, dim) + 0.5 + 0.1 * rng.normal(size=n)
    producer = make_producer(settings, linger_ms=20, batch_size=256 * 1024)
    for i, value in enumerate(wire.encode_many(X, y)):
        producer.send(topic, value=value, partition=i % PARTITIONS)
    producer.flush()
    producer.close()


def raw_rate(settings: KafkaSettings, topic: str, n: int) -> float:
    """Messages per second of a bare consumer that only touches each value."""
    consumer = TimedConsumer(make_consumer(settings))
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    seen, size = 0, 0
    while seen < n:
        for batch in consumer.poll(timeout_ms=500).values():
            seen += len(batch)
            size += sum(len(record.value) for record in batch)
    elapsed = time.perf_counter() - consumer.first
    consumer.close()
    return n / elapsed


def learner_rate(settings: KafkaSettings, topic: str, n: int, dim: int, kind: str) -> float:
    """Messages per second of ``python -m consumer``'s loop, from the first
    returned record to the end of the final checkpoint (checkpoints included,
    group join and client shutdown not)."""
    made: list[TimedConsumer] = []

    def factory(config: ConsumerSettings, **overrides: Any) -> TimedConsumer:
        made.append(TimedConsumer(make_consumer(config, **overrides)))
        return made[-1]

    with tempfile.TemporaryDirectory() as directory:
        config = ConsumerSettings(
            bootstrap_servers=settings.bootstrap_servers, topic=topic,
            dead_letter_topic=topic + ".dlq", dim=dim, group_id=f"bench-{uuid.uuid4().hex}",
            checkpoint_dir=Path(directory), learner=kind, max_messages=n)
        run(config, registry=CollectorRegistry(), consumer_factory=factory)
    return n / (made[0].closed - made[0].first)


def update_costs(n: int, dim: int) -> list[tuple[str, float, float, float]]:
    """(name, mean, p50, p99) microseconds per sample for each learner and River."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, dim))
    y = (X @ np.linspace(-1, 1, dim)).tolist()
    rows = []
    for kind in ("sgd", "adagrad", "rls"):
        learner = make_learner(LearnerConfig(kind=kind), dim)
        rows.append((f"streamtrain {kind} (predict + learn)",
                     *_timed(learner.learn, learner.rows(X), y)))
    rows.extend(_river_costs(X, y))
    return rows


def _river_costs(X: np.ndarray, y: list[float]) -> list[tuple[str, float, float, float]]:
    from river import linear_model, optim

    dicts = [dict(enumerate(row)) for row in X.tolist()]
    model = linear_model.LinearRegression(optimizer=optim.SGD(0.01), intercept_lr=0.01)
    learn = _timed(model.learn_one, dicts, y)
    model = linear_model.LinearRegression(optimizer=optim.SGD(0.01), intercept_lr=0.01)

    def both(x: dict, target: float) -> None:
        model.predict_one(x)
        model.learn_one(x, target)

    return [("River LinearRegression learn_one", *learn),
            ("River predict_one + learn_one", *_timed(both, dicts, y))]


def _timed(call: Callable, rows: Any, targets: list[float]) -> tuple[float, float, float]:
    clock = time.perf_counter
    durations = []
    started = clock()
    for x, target in zip(rows, targets):
        start = clock()
        call(x, target)
        durations.append(clock() - start)
    mean = (clock() - started) / len(targets)
    p50, p99 = np.percentile(durations, [50, 99])
    return mean * 1e6, float(p50) * 1e6, float(p99) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", default="localhost:9092")
    parser.add_argument("--samples", type=int, default=150_000)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = KafkaSettings(bootstrap_servers=args.bootstrap_servers)
    topic = f"bench-consumer-{uuid.uuid4().hex[:8]}"
    admin = make_admin(settings)
    ensure_topics(admin, [sample_topic(topic, PARTITIONS), dead_letter_topic(topic + ".dlq")])
    admin.close()
    produce(settings, topic, args.samples, args.dim)

    raw, learned = [], {"sgd": [], "rls": []}
    for _ in range(args.rounds):
        raw.append(raw_rate(settings, topic, args.samples))
        for kind in learned:
            learned[kind].append(learner_rate(settings, topic, args.samples, args.dim, kind))
    _print_throughput(args, raw, learned)
    _print_costs(update_costs(50_000, args.dim), args.dim)


def _print_throughput(args: argparse.Namespace, raw: list[float],
                      learned: dict[str, list[float]]) -> None:
    """Medians of the rates, and the median of the per-round ratios (each
    round reads raw, then learns, back to back: the fairest pairing on a
    shared machine)."""
    print(f"\n{args.samples} samples, {args.dim} features, {PARTITIONS} partitions, "
          f"median of {args.rounds} rounds\n")
    print("| reader | messages/s | vs raw consumer (median of round ratios) |")
    print("|---|---|---|")
    print(f"| raw KafkaConsumer (poll only) | {statistics.median(raw):,.0f} | 1.00 |")
    for kind, rates in learned.items():
        ratio = statistics.median(rate / base for rate, base in zip(rates, raw))
        print(f"| python -m consumer --learner {kind} | {statistics.median(rates):,.0f} "
              f"| {ratio:.2f} |")


def _print_costs(rows: list[tuple[str, float, float, float]], dim: int) -> None:
    print(f"\n| per-sample update ({dim} features) | mean µs | p50 µs | p99 µs |")
    print("|---|---|---|---|")
    for name, mean, p50, p99 in rows:
        print(f"| {name} | {mean:.2f} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
