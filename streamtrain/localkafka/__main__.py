"""``python -m streamtrain.localkafka {up,down,status,check}``: the local broker."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from streamtrain import localkafka
from streamtrain.errors import StreamtrainError
from streamtrain.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging("INFO")
    try:
        return args.handler(args)
    except StreamtrainError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m streamtrain.localkafka",
        description=f"Run a single-node Apache Kafka {localkafka.KAFKA_VERSION} broker "
        "(KRaft) from the official Maven jars with the local JDK.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    data_dir = dict(type=Path, default=None, metavar="DIR",
                    help=f"broker data directory (default {localkafka.default_data_dir()})")

    up = commands.add_parser("up", help="start the broker (or reuse a running one), "
                             "print its bootstrap address")
    up.add_argument("--port", type=int, default=localkafka.DEFAULT_PORT,
                    help="client port (default %(default)s)")
    up.add_argument("--data-dir", **data_dir)
    up.set_defaults(handler=_up)

    down = commands.add_parser("down", help="stop the broker (SIGTERM, then wait)")
    down.add_argument("--data-dir", **data_dir)
    down.set_defaults(handler=_down)

    status = commands.add_parser("status", help="say whether the broker runs and where")
    status.add_argument("--data-dir", **data_dir)
    status.set_defaults(handler=_status)

    check = commands.add_parser(
        "check", help="create a topic, round-trip one encoded sample, print it")
    check.add_argument("--bootstrap-servers", default="localhost:9092")
    check.set_defaults(handler=_check)

    classpath = commands.add_parser("classpath", help="print the Java class path "
                                    "of Kafka and its tools (resolving it if needed)")
    classpath.set_defaults(handler=lambda args: print(localkafka.classpath()) or 0)
    return parser


def _up(args: argparse.Namespace) -> int:
    info = localkafka.up(port=args.port, data_dir=args.data_dir)
    print(info.bootstrap)
    return 0


def _down(args: argparse.Namespace) -> int:
    stopped = localkafka.down(args.data_dir)
    print("stopped" if stopped else "not running", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    data_dir = (args.data_dir or localkafka.default_data_dir()).resolve()
    info = localkafka.read_info(data_dir)
    running = localkafka.is_running(info)
    report = {"running": running, "data_dir": str(data_dir)}
    if running:
        report.update(bootstrap=info.bootstrap, pid=info.pid,
                      kafka_version=info.kafka_version)
    print(json.dumps(report))
    return 0 if running else 3


def _check(args: argparse.Namespace) -> int:
    from streamtrain.roundtrip import round_trip

    print(json.dumps(round_trip(args.bootstrap_servers), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
