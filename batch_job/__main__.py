"""Command line: ``python -m batch_job run | schedule``.

Exit status: 0 on success (``schedule``: after a clean stop), 1 when a
run fails (the message says why), 2 for invalid settings.

BLAS runs single-threaded unless the environment says otherwise
(``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``): the
QR folds are small, and threaded BLAS on them is many times slower on a
busy machine; parallelism comes from ``--workers``, whose processes
inherit the setting. It is set here, before numpy is first imported.
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402  (after the BLAS setting above)
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from typing import Callable, Sequence  # noqa: E402

from kafka.errors import KafkaError  # noqa: E402
from pydantic_settings import BaseSettings  # noqa: E402

from batch_job.job import run_once  # noqa: E402
from batch_job.scheduler import Cron, Every, Scheduler  # noqa: E402
from batch_job.settings import (  # noqa: E402
    BatchSettings, ReportSettings, ScheduleSettings, parse_duration,
)
from streamtrain.errors import ConfigError, StreamtrainError  # noqa: E402
from streamtrain.logs import configure_logging  # noqa: E402
from streamtrain.settings import add_settings_arguments, build_settings  # noqa: E402

log = logging.getLogger("batch_job")


def command_run(settings: BatchSettings) -> int:
    """Run once; 0 on success, 1 on failure."""
    return 0 if _guarded_run(settings) else 1


def command_schedule(settings: ScheduleSettings) -> int:
    """Run on the schedule until SIGTERM or SIGINT; 0 after a clean stop."""
    plan = Every(parse_duration(settings.every)) if settings.every else Cron(settings.cron or "")
    scheduler = Scheduler(lambda: _guarded_run(settings), plan)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: _request_stop(scheduler, number))
    scheduler.run()
    return 0


def command_report(settings: ReportSettings) -> int:
    """Write the online-against-batch report of a demo run; print its table."""
    from batch_job.report import write_report

    try:
        path, table = write_report(settings.run_dir)
    except StreamtrainError as error:
        log.error("report failed: %s", error)
        return 1
    print(table)
    print(f"\nreport written to {path}")
    return 0


def _request_stop(scheduler: Scheduler, signum: int) -> None:
    log.info("received %s: stopping after the current run, if any", signal.Signals(signum).name)
    scheduler.stop()


def _guarded_run(settings: BatchSettings) -> bool:
    """One run; expected failures (the project's own, Kafka's, the file
    system's) are logged as one clear line, not raised."""
    try:
        report = run_once(settings)
    except StreamtrainError as error:
        log.error("batch run failed: %s", error)
        return False
    except (KafkaError, OSError) as error:
        log.error("batch run failed: %s", _describe(error))
        return False
    log.info("batch run succeeded: %s (%.2fs)", report.path, report.duration_s)
    return True


def _describe(error: Exception) -> str:
    """The error's message, led by its type name once."""
    text, name = str(error), type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}"


COMMANDS: dict[str, tuple[type[BaseSettings], Callable[..., int], str]] = {
    "run": (BatchSettings, command_run, "replay the topic and train once"),
    "schedule": (ScheduleSettings, command_schedule, "run on a schedule (--every or --cron)"),
    "report": (ReportSettings, command_report, "compare online and batch models of a demo run"),
}
"""Sub-commands: name -> (settings class, handler, help)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m batch_job",
        description="Replay the sample topic up to a snapshot and train a linear model exactly.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (cls, _, text) in COMMANDS.items():
        add_settings_arguments(sub.add_parser(name, help=text, description=text), cls)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    namespace = build_parser().parse_args(argv)
    cls, handler, _ = COMMANDS[namespace.command]
    try:
        settings = build_settings(cls, namespace)
    except ConfigError as error:
        print(f"python -m batch_job {namespace.command}: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return handler(settings)


if __name__ == "__main__":
    sys.exit(main())
