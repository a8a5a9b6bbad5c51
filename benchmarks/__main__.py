"""Run every benchmark in one go and write ``benchmarks/RESULTS.md``.

Run: ``.venv/bin/python -m benchmarks [--output PATH] [--quick]``.

Steps: pick the broker (``KAFKA_BOOTSTRAP_SERVERS`` if set, otherwise a
dedicated local Kafka started with :func:`streamtrain.localkafka.up` on a
free port and a temporary data directory, stopped and deleted at the end);
run each benchmark module in its own child process, one after the other,
so no client threads or memory of one measurement leak into the next;
write the date, the machine and every table to ``--output``. The file is
rewritten after each benchmark, so an interrupted run keeps what finished;
a benchmark that fails is recorded with its error output and the others
still run (exit status 1 then). About 10 minutes on a 2-core machine;
``--quick`` uses small sizes (about 3 minutes, for checking the suite
itself, not for numbers).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from streamtrain import localkafka

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class Benchmark:
    """One section of the results: a module run with arguments."""

    title: str
    module: str
    args: tuple[str, ...]
    quick_args: tuple[str, ...]
    reading: str
    """How to read its table."""
    needs_broker: bool = True


SUITE = (
    Benchmark(
        "Producer", "benchmarks.producer", ("--count", "100000", "--repeats", "5"),
        ("--count", "20000", "--repeats", "1", "--pause", "0.5"),
        "Sustained rate, first send to last acknowledgement, acks=all and idempotence for "
        "all three; our publisher includes generating and encoding the samples. CPU µs per "
        "message is less disturbed by other work on the machine than the rate.",
    ),
    Benchmark(
        "Online learner, end to end", "benchmarks.consumer",
        ("--samples", "150000", "--rounds", "5"),
        ("--samples", "20000", "--rounds", "1", "--learners", "sgd"),
        "Same topic, same client fetch settings for every reader; ratios are to the assigned "
        "raw reader in the same round (wall-clock rate, and CPU time per message of the "
        "whole process, steadier on a shared machine). The group-member row is the client's "
        "own cost of group membership; what the learner adds beyond it is decoding, "
        "updates, metrics and checkpoints.",
    ),
    Benchmark(
        "Per-sample update cost", "benchmarks.update_cost",
        ("--dims", "10", "100", "--samples", "5000", "--repeats", "7"),
        ("--dims", "10", "--samples", "500", "--repeats", "2"),
        "In-process, same samples, same SGD step for all; ratio = µs / ours (learn_many), "
        "above 1 is slower than ours. The last column shows all computed the same model.",
        needs_broker=False,
    ),
    Benchmark(
        "Checkpoints", "benchmarks.checkpoint",
        ("--repeats", "15", "--samples", "150000", "--rounds", "4"),
        ("--repeats", "2", "--samples", "20000", "--rounds", "1"),
        "First table: time of one checkpoint (every owned partition's file plus "
        "model.json, with fsync), and that time spread over the 10,000 messages between "
        "checkpoints at the default. Second: end-to-end sgd rate with the default interval "
        "against only the final checkpoint.",
    ),
    Benchmark(
        "Batch replay and train", "benchmarks.batch",
        ("--sizes", "100000", "1000000", "--repeat", "3"),
        ("--sizes", "20000", "--repeat", "1"),
        "Each mode in a fresh process; ratio = raw read time / mode time (median of the "
        "repeats); peak RSS is the measuring process's high-water mark (with workers, the "
        "largest of it and its workers).",
    ),
    Benchmark(
        "Wire decoding", "benchmarks.wire_decode", (), (),
        "µs per message, in-process; the batch decoder is what the services use.",
        needs_broker=False,
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the suite")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with broker() as (bootstrap, kafka_version):
        header = machine_header(bootstrap, kafka_version, args.quick)
        sections: list[str] = []
        failed = False
        for benchmark in SUITE:
            text, ok = run_one(benchmark, bootstrap, args.quick)
            sections.append(text)
            failed |= not ok
            write(args.output, header, sections, time.monotonic() - started)
    write(args.output, header, sections, time.monotonic() - started, done=True)
    print(f"wrote {args.output} in {(time.monotonic() - started) / 60:.1f} min", file=sys.stderr)
    return 1 if failed else 0


@contextlib.contextmanager
def broker() -> Iterator[tuple[str, str]]:
    """(bootstrap servers, Kafka version) of the broker to measure against."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external, "external broker (version not checked)"
        return
    with tempfile.TemporaryDirectory(prefix="streamtrain-bench-kafka-") as directory:
        data_dir = Path(directory)
        print("starting a dedicated Kafka broker ...", file=sys.stderr)
        info = localkafka.up(port=_free_port(), data_dir=data_dir)
        try:
            yield info.bootstrap, info.kafka_version
        finally:
            localkafka.down(data_dir)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_one(benchmark: Benchmark, bootstrap: str, quick: bool) -> tuple[str, bool]:
    """Run one benchmark in a child process; its section of the results."""
    extra = benchmark.quick_args if quick else benchmark.args
    command = [sys.executable, "-m", benchmark.module, *extra]
    if benchmark.needs_broker:
        command += ["--bootstrap-servers", bootstrap]
    print(f"running {' '.join(command[1:])}", file=sys.stderr)
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    minutes = (time.monotonic() - started) / 60
    shown = " ".join(["python", *command[1:]]).replace(bootstrap, "BROKER")
    lines = [f"## {benchmark.title}", "", f"`{shown}` ({minutes:.1f} min)", "",
             benchmark.reading, ""]
    if result.returncode == 0:
        lines.append(result.stdout.strip())
    else:
        lines += [f"**Failed** with exit status {result.returncode}:", "", "```",
                  result.stderr.strip()[-3000:], "```"]
    print(result.stdout, file=sys.stderr)
    return "\n".join(lines) + "\n", result.returncode == 0


def machine_header(bootstrap: str, kafka_version: str, quick: bool) -> str:
    """Date, machine, versions and load: what a reader needs to compare runs."""
    where = "a dedicated local broker" if "external" not in kafka_version else bootstrap
    rows = [
        ("date (UTC)", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores (nproc)"),
        ("memory", f"{_mem_total_gib():.1f} GiB"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("kafka-python", _version("kafka-python")),
        ("Kafka", f"{kafka_version} ({where})"),
        ("numpy / River / scikit-learn", " / ".join(
            _version(name) for name in ("numpy", "river", "scikit-learn"))),
        ("load average at start", " ".join(f"{v:.2f}" for v in os.getloadavg())),
    ]
    lines = ["# Benchmark results", ""]
    if quick:
        lines += [("**Quick run (small sizes): these numbers only show that the suite "
                  "works.**"), ""]
    lines += [("Written by `python -m benchmarks`. Medians over repeats; every ratio compares "
              "runs made in the same invocation against the same broker. The machine may "
              "have been shared with other work: compare ratios, not absolute rates, across "
              "runs."), "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def write(path: Path, header: str, sections: list[str], seconds: float,
          done: bool = False) -> None:
    status = (f"Whole suite: {seconds / 60:.1f} min; load average at the end: "
              + " ".join(f"{v:.2f}" for v in os.getloadavg()) if done
              else f"Incomplete: {len(sections)} of {len(SUITE)} benchmarks so far.")
    path.write_text(header + "\n" + status + "\n\n" + "\n".join(sections))


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    raise SystemExit(main())
