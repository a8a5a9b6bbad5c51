"""Replay-and-train throughput against a raw kafka-python read, and peak
memory, at 1e5 and 1e6 samples.

Run: ``.venv/bin/python -m benchmarks.batch [--sizes 100000 1000000]
[--partitions 2] [--dim 10]`` with a broker at ``KAFKA_BOOTSTRAP_SERVERS``
(default ``localhost:9092``). For every size it creates a fresh topic,
fills it, then measures, each in a fresh child process (so peak RSS is
that of one measurement alone):

- ``raw``: one KafkaConsumer assigned to every partition, same fetch
  settings as the replay (no group, ``read_committed``, 5000 records per
  poll), reading from the beginning to the end offsets and touching each
  value: the ceiling for a pure-Python client;
- ``replay`` with 1 and with 2 workers: snapshot, replay, decode, QR
  statistics and the exact solve (everything ``batch_job run`` does but
  writing the file), with BLAS single-threaded as ``python -m batch_job``
  runs it.

Each mode runs ``--repeat`` times, interleaved (the machine may be
shared). It prints a Markdown table of medians over the repeats: samples
per second, ratio to ``raw`` (raw's median time over the mode's), and peak
RSS of the measuring process (``VmHWM``; with workers, the largest of it
and its worker processes). The topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid

import numpy as np
from kafka import TopicPartition

from batch_job.replay import MAX_POLL_RECORDS, replay, replay_consumer, take_snapshot
from streamtrain import wire
from streamtrain.clients import make_admin, make_producer
from streamtrain.settings import StreamSettings
from streamtrain.topics import ensure_topics, sample_topic

MODES = ("raw", "workers-1", "workers-2")
BLAS_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""What ``python -m batch_job`` sets before numpy is imported."""


def fill(settings: StreamSettings, topic: str, n: int, partitions: int, dim: int) -> None:
    """Create ``topic`` and write ``n`` random samples round robin."""
    admin = make_admin(settings)
    try:
        ensure_topics(admin, [sample_topic(topic, partitions)])
    finally:
        admin.close()
    producer = make_producer(settings, linger_ms=20, batch_size=512 * 1024)
    rng = np.random.default_rng(0)
    for start in range(0, n, 50_000):
        rows = min(50_000, n - start)
        X = rng.normal(size=(rows, dim))
        y = X @ np.arange(1, dim + 1) + rng.normal(size=rows)
        for i, value in enumerate(wire.encode_many(X, y)):
            producer.send(topic, value=value, partition=(start + i) % partitions)
    producer.flush()
    producer.close()


def raw_read(settings: StreamSettings, topic: str) -> int:
    """Read every partition to its end offset with one plain consumer."""
    consumer = replay_consumer(settings)
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    count = 0
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        for records in consumer.poll(timeout_ms=500, max_records=MAX_POLL_RECORDS).values():
            count += sum(1 for r in records if len(r.value) > 0)
    consumer.close()
    return count


def replay_and_solve(settings: StreamSettings, topic: str, workers: int) -> int:
    """What a run does, minus writing the model file."""
    consumer = replay_consumer(settings)
    snapshot = take_snapshot(consumer, topic)
    consumer.close()
    result = replay(settings, snapshot, workers=workers)
    result.accumulator.solve()
    return result.samples


def child(mode: str, topic: str, dim: int, bootstrap: str) -> None:
    """Measure one mode in this process; print JSON."""
    settings = StreamSettings(bootstrap_servers=bootstrap, topic=topic, dim=dim)
    started = time.perf_counter()
    if mode == "raw":
        count = raw_read(settings, topic)
    else:
        count = replay_and_solve(settings, topic, int(mode.split("-")[1]))
    seconds = time.perf_counter() - started
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_mib = max(_own_peak_kib(), children_kib) / 1024
    print(json.dumps({"count": count, "seconds": seconds, "peak_mib": peak_mib}))


def _own_peak_kib() -> int:
    """This process's peak resident set (VmHWM), which exec resets."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(mode: str, topic: str, dim: int, bootstrap: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.batch", "--child", mode, "--topic", topic,
         "--dim", str(dim), "--bootstrap-servers", bootstrap],
        check=True, capture_output=True, text=True, env={**os.environ, **BLAS_ONE_THREAD},
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode (median)")
    parser.add_argument("--bootstrap-servers",
                        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.topic, args.dim, args.bootstrap_servers)
        return
    settings = StreamSettings(bootstrap_servers=args.bootstrap_servers, dim=args.dim)
    print(f"{args.partitions} partitions, {args.dim} features, median of {args.repeat}\n")
    print("| samples | reader | samples/s | vs raw | peak RSS MiB |")
    print("|---|---|---|---|---|")
    topics = []
    try:
        for n in args.sizes:
            topic = f"bench-batch-{n}-{uuid.uuid4().hex[:6]}"
            topics.append(topic)
            fill(settings, topic, n, args.partitions, args.dim)
            _report(n, topic, args)
    finally:
        _delete(settings, topics)


def _report(n: int, topic: str, args: argparse.Namespace) -> None:
    """Measure every mode ``args.repeat`` times, interleaved; print medians."""
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):
        for mode in MODES:
            result = measure(mode, topic, args.dim, args.bootstrap_servers)
            if result["count"] != n:
                raise SystemExit(f"{mode} read {result['count']} samples, expected {n}")
            runs[mode].append(result)
    seconds = {mode: statistics.median(r["seconds"] for r in runs[mode]) for mode in MODES}
    for mode in MODES:
        peak = statistics.median(r["peak_mib"] for r in runs[mode])
        print(f"| {n:,} | {mode} | {n / seconds[mode]:,.0f} | {seconds['raw'] / seconds[mode]:.2f} "
              f"| {peak:.0f} |", flush=True)


def _delete(settings: StreamSettings, topics: list[str]) -> None:
    if not topics:
        return
    admin = make_admin(settings)
    try:
        admin.delete_topics(topics)
    finally:
        admin.close()


if __name__ == "__main__":
    main()
