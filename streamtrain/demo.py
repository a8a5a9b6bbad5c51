"""``python -m streamtrain.demo``: the whole pipeline on a local broker.

For each scenario (a stationary stream, then one with an abrupt drift
half-way) the demo:

1. creates a fresh sample topic on the local broker (started if needed);
2. starts two online learners as separate processes (``python -m
   consumer``, SGD and RLS, each its own consumer group and checkpoint
   directory) and prints their metrics endpoints;
3. starts the producer (``python -m producer``) at a steady rate and
   records, four times a second, each learner's prequential loss counters and
   its combined model file (``trace-<learner>.jsonl``);
4. runs the batch job (``python -m batch_job run``) once mid-stream and
   once after the stream ended and the learners caught up;
5. replays the whole topic once more with a fresh learner of each kind,
   as fast as it can go, to measure its throughput
   (``catchup-<learner>.json``);
6. finally runs ``python -m batch_job report`` on the run directory, which
   prints the side-by-side table and writes ``report.md`` with plots.

The services meet only through Kafka and their files; the demo starts
them as the commands a user would type. The broker is stopped at the end
if the demo started it, unless ``--keep-running``.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from streamtrain import localkafka
from streamtrain.clients import make_admin
from streamtrain.errors import ArtifactError, StreamtrainError
from streamtrain.logs import configure_logging
from streamtrain.model import read_model
from streamtrain.settings import KafkaSettings
from streamtrain.topics import dead_letter_topic, ensure_topics, sample_topic

log = logging.getLogger("streamtrain.demo")

LEARNERS = {
    "sgd": ["--learner", "sgd", "--learning-rate", "0.01"],
    "rls": ["--learner", "rls", "--forgetting-factor", "0.999"],
}
SCENARIOS = {"stationary": ["--drift", "none"], "drifting": ["--drift", "abrupt"]}
TRACE_INTERVAL_S = 0.25


@dataclass
class DemoOptions:
    out: Path
    samples: int
    rate: float
    dim: int
    partitions: int
    port: int
    noise: float
    keep_running: bool
    bootstrap_servers: str | None = None


@dataclass
class Learner:
    name: str
    process: subprocess.Popen
    metrics_url: str
    checkpoint_dir: Path
    trace: list[dict] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    configure_logging("INFO")
    try:
        return run(options)
    except StreamtrainError as error:
        log.error("%s", error)
        return 1


def _parse(argv: list[str] | None) -> DemoOptions:
    parser = argparse.ArgumentParser(
        prog="python -m streamtrain.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=Path("runs/demo"), help="run directory (default %(default)s)"
    )
    parser.add_argument(
        "--samples", type=int, default=60_000, help="samples per scenario (default %(default)s)"
    )
    parser.add_argument(
        "--rate", type=float, default=3000, help="producer rate, samples/s (default %(default)s)"
    )
    parser.add_argument("--dim", type=int, default=10, help="features (default %(default)s)")
    parser.add_argument(
        "--partitions", type=int, default=3, help="partitions (default %(default)s)"
    )
    parser.add_argument(
        "--noise", type=float, default=0.5, help="noise sigma (default %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=localkafka.DEFAULT_PORT,
        help="broker port (default %(default)s)",
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=None,
        help="use this broker instead of starting the local one",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the broker running at the end (to look at it)",
    )
    args = parser.parse_args(argv)
    return DemoOptions(
        args.out,
        args.samples,
        args.rate,
        args.dim,
        args.partitions,
        args.port,
        args.noise,
        args.keep_running,
        args.bootstrap_servers,
    )


def run(options: DemoOptions) -> int:
    """Run every scenario, then the report; return the report's exit code."""
    if options.bootstrap_servers:
        return _run_on(options, options.bootstrap_servers)
    was_running = localkafka.is_running(localkafka.read_info(localkafka.default_data_dir()))
    info = localkafka.up(port=options.port)
    try:
        return _run_on(options, info.bootstrap)
    finally:
        if options.keep_running or was_running:
            print(
                f"broker left running at {info.bootstrap}; stop it with "
                "`python -m streamtrain.localkafka down`",
                file=sys.stderr,
            )
        else:
            localkafka.down()


def _run_on(options: DemoOptions, bootstrap: str) -> int:
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    options.out.mkdir(parents=True, exist_ok=True)
    for name, flags in SCENARIOS.items():
        run_scenario(name, flags, options, settings)
    report = _service("batch_job", "report", "--run-dir", str(options.out))
    return subprocess.run(report).returncode


def run_scenario(
    name: str, drift: list[str], options: DemoOptions, settings: KafkaSettings
) -> None:
    """Stream one scenario through both learners and the batch job."""
    directory = options.out / name
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d%H%M%S")
    topic = f"demo-{name}-{stamp}"
    common = [
        "--bootstrap-servers",
        settings.bootstrap_servers,
        "--topic",
        topic,
        "--dead-letter-topic",
        f"{topic}.dlq",
        "--dim",
        str(options.dim),
    ]
    _create_topics(settings, topic, options.partitions)
    log.info(
        "scenario %s: topic %s, %d samples at %.0f/s", name, topic, options.samples, options.rate
    )

    # Learners first, so they learn live as samples arrive.
    learners = [_start_learner(n, flags, common, directory, stamp) for n, flags in LEARNERS.items()]
    stop = threading.Event()
    tracer = threading.Thread(target=_trace, args=(learners, stop), daemon=True)
    tracer.start()

    # The producer, and the batch job once mid-stream.
    producer = subprocess.Popen(
        _service(
            "producer",
            *common,
            *drift,
            "--drift-at",
            str(options.samples // 2),
            "--count",
            str(options.samples),
            "--rate",
            str(options.rate),
            "--seed",
            "7",
            "--noise",
            str(options.noise),
            "--partitions",
            str(options.partitions),
            "--truth-file",
            str(directory / "truth.json"),
            "--progress",
            "log",
        )
    )
    time.sleep(options.samples / options.rate / 2)
    _batch(common, directory, "mid-stream")
    if producer.wait() != 0:
        raise StreamtrainError(f"the producer failed with exit code {producer.returncode}")

    # Let the learners catch up and stop, then the final batch run.
    for learner in learners:
        learner.process.wait()
    stop.set()
    tracer.join()
    _batch(common, directory, "end of stream")
    _write_traces(directory, learners)

    # How fast each learner gets through the whole topic from scratch.
    for name, flags in LEARNERS.items():
        _catch_up(name, flags, common, directory, stamp)


def _catch_up(name: str, flags: list[str], common: list[str], directory: Path, stamp: str) -> None:
    """Replay the whole topic with a fresh learner as fast as it can go and
    record ``catchup-<name>.json``: samples and seconds from its first
    learned sample to its last."""
    learner = _start_learner(f"catchup-{name}", flags, common, directory, stamp, quiet=True)
    start = time.monotonic()
    while learner.process.poll() is None:
        point = _observe(learner, time.monotonic() - start, with_model=False)
        if point is not None and point["samples"] > 0:
            learner.trace.append(point)
        time.sleep(0.05)
    learned = learner.trace
    total = learned[-1]["samples"] if learned else 0
    done = next((p for p in learned if p["samples"] == total), None)
    seconds = done["t"] - learned[0]["t"] if done and len(learned) > 1 else float("nan")
    # The first observation is up to one interval late: count from there.
    counted = total - learned[0]["samples"] if learned else 0
    result = {
        "samples": total,
        "counted_samples": counted,
        "seconds": seconds,
        "samples_per_second": counted / seconds if seconds and seconds > 0 else None,
    }
    (directory / f"catchup-{name}.json").write_text(json.dumps(result, indent=1))
    log.info("catch-up %s: %s", name, result)


def _create_topics(settings: KafkaSettings, topic: str, partitions: int) -> None:
    admin = make_admin(settings)
    try:
        ensure_topics(admin, [sample_topic(topic, partitions), dead_letter_topic(f"{topic}.dlq")])
    finally:
        admin.close()


def _start_learner(
    name: str, flags: list[str], common: list[str], directory: Path, stamp: str, quiet: bool = False
) -> Learner:
    port = _free_port()
    checkpoint_dir = directory / name
    command = _service(
        "consumer",
        *common,
        *flags,
        "--group-id",
        f"demo-{name}-{stamp}",
        "--checkpoint-dir",
        str(checkpoint_dir),
        "--checkpoint-every",
        "2000",
        "--metrics-port",
        str(port),
        "--metrics-address",
        "127.0.0.1",
        "--until-idle",
        "3" if quiet else "8",
        *(["--log-level", "WARNING"] if quiet else []),
    )
    url = f"http://127.0.0.1:{port}/metrics"
    if not quiet:
        print(f"online learner {name}: metrics at {url}", file=sys.stderr)
    return Learner(name, subprocess.Popen(command), url, checkpoint_dir)


def _batch(common: list[str], directory: Path, when: str) -> None:
    log.info("batch job (%s)", when)
    command = _service(
        "batch_job",
        "run",
        *common,
        "--models-dir",
        str(directory / "models"),
        "--online-model",
        str(directory / "sgd" / "model.json"),
    )
    if subprocess.run(command).returncode != 0:
        raise StreamtrainError(f"the batch job failed ({when})")


def _trace(learners: list[Learner], stop: threading.Event) -> None:
    """Four times a second, record each learner's loss counters and model;
    every five seconds, log each learner's progress."""
    start = time.monotonic()
    next_log = 5.0
    while not stop.wait(TRACE_INTERVAL_S):
        elapsed = time.monotonic() - start
        for learner in learners:
            point = _observe(learner, elapsed)
            if point is not None:
                learner.trace.append(point)
        if elapsed >= next_log:
            next_log += 5.0
            for learner in learners:
                log.info("online %s: %s", learner.name, _progress(learner.trace))


def _progress(trace: list[dict]) -> str:
    """Samples learned and the MSE of the last five seconds."""
    if not trace:
        return "waiting"
    last = trace[-1]
    earlier = next((p for p in reversed(trace) if p["t"] <= last["t"] - 5), trace[0])
    learned = last["samples"] - earlier["samples"]
    window = (
        (last["squared_error"] - earlier["squared_error"]) / learned if learned else float("nan")
    )
    return f"{last['samples']} samples learned, MSE of the last 5 s {window:.4f}"


def _observe(learner: Learner, elapsed: float, with_model: bool = True) -> dict | None:
    try:
        with urllib.request.urlopen(learner.metrics_url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    totals = {"streamtrain_online_samples": 0.0, "streamtrain_online_squared_error": 0.0}
    for family in text_string_to_metric_families(text):
        if family.name in totals:
            totals[family.name] = sum(s.value for s in family.samples if s.name.endswith("_total"))
    point = {
        "t": round(elapsed, 3),
        "samples": int(totals["streamtrain_online_samples"]),
        "squared_error": totals["streamtrain_online_squared_error"],
    }
    if not with_model:
        return point
    try:
        model = read_model(learner.checkpoint_dir / "model.json")
        point.update(model_samples=model.samples, weights=model.weights.tolist(), bias=model.bias)
    except ArtifactError:
        pass
    return point


def _write_traces(directory: Path, learners: list[Learner]) -> None:
    for learner in learners:
        with open(directory / f"trace-{learner.name}.jsonl", "w") as out:
            for point in learner.trace:
                out.write(json.dumps(point) + "\n")


def _service(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
