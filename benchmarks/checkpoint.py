"""Cost of the online learner's checkpoints.

Two measurements:

- time per checkpoint: what ``python -m consumer`` does when a checkpoint
  is due (flush the dead-letter producer, write each changed partition's
  checkpoint atomically with fsync after verifying the one on disk, then
  rewrite ``model.json`` from every partition's file), for 1, 3 and 12
  owned partitions at 10 and 100 features and each learner, in a temporary
  directory (``--dir`` chooses its parent, so the file system is the one a
  deployment uses). In-process, no Kafka. Median and 90th percentile over
  ``--repeats`` checkpoints, after one that creates the files.
- throughput with checkpoints at the default interval (every 10,000
  messages, the ``--checkpoint-every`` default) against effectively never
  (one final checkpoint), end to end through a real broker with
  ``--learner sgd``, interleaved rounds, median of the per-round ratios.
  Needs ``--bootstrap-servers`` (or ``KAFKA_BOOTSTRAP_SERVERS``); skipped
  with ``--no-throughput``.

Run: ``.venv/bin/python -m benchmarks.checkpoint [--repeats R] [--samples N]
[--rounds R] [--dir PATH] [--no-throughput]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from benchmarks import consumer as end_to_end
from consumer.app import Worker
from consumer.metrics import ConsumerMetrics
from consumer.partition import PartitionState
from consumer.settings import ConsumerSettings
from streamtrain.checkpoint import CheckpointStore
from streamtrain.learners import make_learner
from streamtrain.settings import KafkaSettings

TOPIC = "bench-checkpoint"
NEVER = 10**12
"""A ``checkpoint_every`` (messages) and ``checkpoint_interval`` (seconds)
that no benchmark reaches."""


class NullProducer:
    """The dead-letter producer of a run without rejections: flush is free."""

    def flush(self) -> None:
        pass


def checkpoint_seconds(directory: Path, kind: str, dim: int, partitions: int,
                       repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` checkpoints of ``partitions`` changed
    partitions (after a first one that creates the files)."""
    settings = ConsumerSettings(topic=TOPIC, dim=dim, checkpoint_dir=directory, learner=kind)
    store = CheckpointStore(directory, TOPIC, clock=time.time)
    metrics = ConsumerMetrics(CollectorRegistry(), settings.learner_config())
    worker = Worker(settings, store, metrics, NullProducer(), time.time)
    rng = np.random.default_rng(partitions)
    for partition in range(partitions):
        learner = make_learner(settings.learner_config(), dim)
        X = rng.normal(size=(200, dim))
        learner.learn_many(learner.rows(X), (X.sum(axis=1) + 1.0).tolist())
        worker.states[partition] = PartitionState(TOPIC, partition, learner, 200)
    durations = []
    for _ in range(repeats + 1):
        for state in worker.states.values():
            state.next_offset += 1
            state.pending = 1
        started = time.perf_counter()
        worker.checkpoint()
        durations.append(time.perf_counter() - started)
    return durations[1:]


def cost_table(parent: Path | None, repeats: int) -> str:
    lines = [
        (f"Checkpoint of every owned partition plus model.json, fsync on, median of "
        f"{repeats} (file system of {parent or tempfile.gettempdir()})\n"),
        ("| learner | features | partitions | ms per checkpoint (median) | p90 ms "
        "| µs per message at the default 10,000 |"),
        "|---|---|---|---|---|---|",
    ]
    for kind in ("sgd", "adagrad", "rls"):
        for dim in (10, 100):
            for partitions in (1, 3, 12):
                with tempfile.TemporaryDirectory(dir=parent) as directory:
                    seconds = checkpoint_seconds(Path(directory), kind, dim, partitions, repeats)
                median = statistics.median(seconds)
                p90 = float(np.percentile(seconds, 90))
                lines.append(f"| {kind} | {dim} | {partitions} | {median * 1e3:.1f} "
                             f"| {p90 * 1e3:.1f} | {median / 10_000 * 1e6:.2f} |")
    return "\n".join(lines)


def throughput_table(bootstrap: str, samples: int, rounds: int, dim: int = 10) -> str:
    """End-to-end sgd rate with the default checkpoint interval and with none
    but the final one, same topic, alternating which goes first."""
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    topic = end_to_end.create_topic(settings, samples, dim)
    modes = {
        "every 10,000 messages (default)": {},
        "never (only the final one)": {"checkpoint_every": NEVER, "checkpoint_interval": NEVER},
    }
    runs: dict[str, list[end_to_end.Measured]] = {mode: [] for mode in modes}
    try:
        for round_ in range(rounds):
            order = list(modes) if round_ % 2 == 0 else list(reversed(modes))
            for mode in order:
                runs[mode].append(end_to_end.learner_rate(
                    settings, topic, samples, dim, "sgd", **modes[mode]))
    finally:
        end_to_end.delete_topic(settings, topic)
    never = runs["never (only the final one)"]
    lines = [
        (f"python -m consumer --learner sgd, {samples} samples, {dim} features, "
        f"{end_to_end.PARTITIONS} partitions, median of {rounds} rounds\n"),
        ("| checkpoints | messages/s | vs never (wall clock) | CPU µs per message "
        "| vs never (CPU) |"),
        "|---|---|---|---|---|",
    ]
    for mode, values in runs.items():
        rate = statistics.median(run[0] / base[0] for run, base in zip(values, never))
        cpu = statistics.median(base[1] / run[1] for run, base in zip(values, never))
        lines.append(f"| {mode} | {statistics.median(v[0] for v in values):,.0f} | {rate:.2f} "
                     f"| {statistics.median(v[1] for v in values):.1f} | {cpu:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkpoint",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers",
                        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"))
    parser.add_argument("--repeats", type=int, default=15, help="checkpoints per configuration")
    parser.add_argument("--samples", type=int, default=150_000, help="messages per run")
    parser.add_argument("--rounds", type=int, default=4, help="end-to-end rounds")
    parser.add_argument("--dir", type=Path, default=None,
                        help="parent of the temporary checkpoint directories")
    parser.add_argument("--no-throughput", action="store_true",
                        help="only the in-process cost table (no broker needed)")
    args = parser.parse_args(argv)
    print(cost_table(args.dir, args.repeats))
    if not args.no_throughput:
        print()
        print(throughput_table(args.bootstrap_servers, args.samples, args.rounds))


if __name__ == "__main__":
    main()
