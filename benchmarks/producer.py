"""Sustained produce rate: ``python -m producer``'s publisher against the raw
kafka-python producer and Kafka's own ``ProducerPerformance``, same broker,
same settings (acks=all, idempotence, linger, batch size), same message
size, in one run. Prints a Markdown table of medians over repeats: the
sustained rate (first send to last acknowledgement) and, for the Python
producers, the process CPU time per message, which a machine shared with
other work disturbs less than the rate.

Run: ``.venv/bin/python -m benchmarks.producer [--count N] [--repeats R]``
(broker from ``--bootstrap-servers`` or ``KAFKA_BOOTSTRAP_SERVERS``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from typing import Callable

from prometheus_client import CollectorRegistry

from producer.metrics import ProducerMetrics
from producer.publisher import Publisher, PublishOptions
from producer.sources import SyntheticSource
from producer.synthetic import SyntheticStream
from streamtrain import wire
from streamtrain.clients import make_admin, make_producer
from streamtrain.settings import KafkaSettings
from streamtrain.topics import ensure_topics, sample_topic

_JAVA_RATE = re.compile(r"records sent, ([0-9.]+) records/sec")


def main() -> None:
    args = _parser().parse_args()
    settings = KafkaSettings(bootstrap_servers=args.bootstrap_servers)
    props = {"linger_ms": args.linger_ms, "batch_size": args.batch_bytes}
    runners: dict[str, Callable[[str], Measured]] = {
        "python -m producer (publisher)": lambda t: _ours(settings, t, args, props),
        "raw KafkaProducer, pre-built bytes": lambda t: _raw(settings, t, args, props),
        "Kafka ProducerPerformance (Java)": lambda t: _java(settings, t, args),
    }
    results: dict[str, list[Measured]] = {name: [] for name in runners}
    names, topics = list(runners), []
    try:
        for repeat in range(args.repeats):
            # each runner takes every position in turn, and the broker settles
            # between runs, so no runner always follows the heavy Java one
            for name in names[repeat % 3 :] + names[: repeat % 3]:
                topics.append(_fresh_topic(settings, args.partitions))
                time.sleep(args.pause)
                results[name].append(runners[name](topics[-1]))
    finally:
        _delete_topics(settings, topics)
    _print_table({name: _median(r) for name, r in results.items()}, args)


Measured = tuple[float, float | None]
"""Messages per second, and CPU microseconds per message (None: not measured)."""


def _median(results: list[Measured]) -> Measured:
    cpu = [c for _, c in results if c is not None]
    return statistics.median(r for r, _ in results), statistics.median(cpu) if cpu else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.producer", description=__doc__)
    default_bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    parser.add_argument("--bootstrap-servers", default=default_bootstrap)
    parser.add_argument("--count", type=int, default=100_000, help="messages per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dim", type=int, default=10, help="features (message size 32+8*dim)")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--linger-ms", type=int, default=10)
    parser.add_argument("--batch-bytes", type=int, default=131072)
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    return parser


def _fresh_topic(settings: KafkaSettings, partitions: int) -> str:
    name = f"bench-producer-{uuid.uuid4().hex[:8]}"
    admin = make_admin(settings)
    try:
        ensure_topics(admin, [sample_topic(name, partitions)])
    finally:
        admin.close()
    return name


def _delete_topics(settings: KafkaSettings, topics: list[str]) -> None:
    admin = make_admin(settings)
    try:
        if topics:
            admin.delete_topics(topics)
    finally:
        admin.close()


def _ours(settings: KafkaSettings, topic: str, args: argparse.Namespace, props: dict) -> float:
    """Generation, encoding, sending and ack accounting, as the CLI does."""
    producer = make_producer(settings, **props)
    try:
        options = PublishOptions(topic=topic, count=args.count)
        publisher = Publisher(producer, options, ProducerMetrics.create(CollectorRegistry()))
        cpu = time.process_time()
        stats = publisher.run(SyntheticSource(SyntheticStream(args.dim)))
        cpu = time.process_time() - cpu
    finally:
        producer.close()
    assert stats.acked == args.count, stats.report()
    return stats.sent / stats.duration_s, cpu / args.count * 1e6


def _raw(settings: KafkaSettings, topic: str, args: argparse.Namespace, props: dict) -> float:
    """The client alone: send pre-encoded values in a loop, then flush."""
    X, y = SyntheticStream(args.dim).next_block(args.count)
    values = wire.encode_many(X, y, first_id=0)
    producer = make_producer(settings, **props)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for value in values:
            producer.send(topic, value=value)
        producer.flush()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        producer.close()
    return args.count / elapsed, cpu / args.count * 1e6


def _java(settings: KafkaSettings, topic: str, args: argparse.Namespace) -> Measured:
    classpath = subprocess.run(
        [sys.executable, "-m", "streamtrain.localkafka", "classpath"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    command = [
        "java", "-Xmx512m", "-cp", classpath, "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic, "--num-records", str(args.count),
        "--record-size", str(wire.encoded_size(args.dim)), "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={settings.bootstrap_servers}", "acks=all",
        "enable.idempotence=true", f"linger.ms={args.linger_ms}",
        f"batch.size={args.batch_bytes}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return float(_JAVA_RATE.findall(output)[-1]), None


def _print_table(medians: dict[str, Measured], args: argparse.Namespace) -> None:
    size = wire.encoded_size(args.dim)
    raw, raw_cpu = medians["raw KafkaProducer, pre-built bytes"]
    java = medians["Kafka ProducerPerformance (Java)"][0]
    print(
        f"{args.count} messages of {size} bytes, {args.partitions} partitions, acks=all, "
        f"idempotent, linger.ms={args.linger_ms}, batch.size={args.batch_bytes}; "
        f"median of {args.repeats}\n"
    )
    print(
        "| producer | msg/s | MB/s | vs raw kafka-python | vs ProducerPerformance "
        "| CPU µs/msg | raw's CPU / this CPU |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (rate, cpu) in medians.items():
        cpu_text = f"{cpu:.1f} | {raw_cpu / cpu:.2f}" if cpu and raw_cpu else "n/a | n/a"
        print(
            f"| {name} | {rate:,.0f} | {rate * size / 1e6:.1f} | {rate / raw:.2f} "
            f"| {rate / java:.2f} | {cpu_text} |"
        )


if __name__ == "__main__":
    main()
