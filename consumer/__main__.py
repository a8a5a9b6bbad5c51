"""Command line: ``python -m consumer [run] [flags]`` runs the online
learner; ``python -m consumer inspect --checkpoint-dir DIR`` prints the
models of a checkpoint directory as JSON.

Exit codes: 0 after a clean stop (SIGTERM, SIGINT, ``--until-idle``,
``--max-messages``), 2 for an unusable setting or checkpoint, 1 for any
other failure the service detects.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

from kafka.errors import KafkaError

from consumer import inspect
from consumer.app import run
from consumer.settings import ConsumerSettings
from streamtrain.errors import ConfigError, StreamtrainError
from streamtrain.logs import configure_logging
from streamtrain.settings import add_settings_arguments, build_settings

log = logging.getLogger("consumer")

DESCRIPTION = "Online learner: a consumer-group member that learns from every sample."


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "inspect":
        return _inspect(args[1:])
    if args and args[0] == "run":
        args = args[1:]
    return _run(args)


def _inspect(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m consumer inspect",
                                     description="print checkpointed models as JSON")
    default = os.environ.get("CONSUMER_CHECKPOINT_DIR", "checkpoints")
    parser.add_argument("--checkpoint-dir", type=Path, default=Path(default),
                        help=f"checkpoint directory [env CONSUMER_CHECKPOINT_DIR; "
                             f"default checkpoints]")
    return inspect.main(parser.parse_args(argv).checkpoint_dir)


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m consumer", description=DESCRIPTION,
        epilog="python -m consumer inspect --checkpoint-dir DIR prints the models as JSON")
    add_settings_arguments(parser, ConsumerSettings)
    try:
        settings = build_settings(ConsumerSettings, parser.parse_args(argv))
        configure_logging(settings.log_level)
        stop = threading.Event()
        _stop_on_signals(stop)
        summary = run(settings, stop=stop)
    except ConfigError as error:
        log.error("%s", error)
        return 2
    except StreamtrainError as error:
        log.error("%s", error)
        return 1
    except KafkaError as error:
        log.error("the Kafka client gave up (bootstrap servers %s): %r",
                  settings.bootstrap_servers, error)
        return 1
    log.info("stopped: messages=%d samples=%d rejected=%d", summary.messages,
             summary.samples, summary.rejected)
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT finish the current batch, checkpoint, commit, exit 0."""
    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping after the current batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


if __name__ == "__main__":
    sys.exit(main())
