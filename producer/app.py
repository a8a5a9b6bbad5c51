"""``python -m producer``: wire settings, source, topics, client and publisher.

Exit codes: 0 when every sample sent was acknowledged; 1 when some sample
was not delivered (the report says how many) or Kafka could not be used;
2 for bad input or configuration (a clear message, nothing or only the
rows before the bad one sent). On exit it prints one human line on stderr
and one JSON line on stdout (see :meth:`RunStats.report`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from typing import Any, Iterator, Sequence, TextIO

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from producer.errors import InputError
from producer.files import FileSource
from producer.metrics import ProducerMetrics
from producer.progress import ProgressBar, ProgressLog, TruthWriter, describe
from producer.publisher import Clocks, Observer, Publisher, PublishOptions, RunStats
from producer.settings import ProducerSettings, Progress, Source
from producer.sources import SyntheticSource
from producer.synthetic import SyntheticStream
from streamtrain.clients import make_admin, make_producer
from streamtrain.errors import ConfigError, StreamtrainError, TopicConfigError
from streamtrain.logs import configure_logging
from streamtrain.metrics import serve
from streamtrain.settings import add_settings_arguments, build_settings
from streamtrain.topics import dead_letter_topic, ensure_topics, sample_topic

log = logging.getLogger(__name__)

EXIT_OK, EXIT_UNDELIVERED, EXIT_BAD_INPUT = 0, 1, 2
DESCRIPTION = (
    "Publish training samples (synthetic y = w.x + b + noise, or rows of a CSV / JSON Lines "
    "file) to the sample topic, idempotently with acks=all; report what was acknowledged."
)


def main(
    argv: Sequence[str] | None = None,
    *,
    registry: CollectorRegistry | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the producer; return the exit code (see the module)."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        settings = parse(argv)
    except ConfigError as error:
        print(f"producer: error: {error}", file=stderr)
        return EXIT_BAD_INPUT
    configure_logging(settings.log_level)
    try:
        stats = run(settings, registry or CollectorRegistry(), stderr)
    except (ConfigError, InputError, TopicConfigError) as error:
        print(f"producer: error: {error}", file=stderr)
        return EXIT_BAD_INPUT
    except (KafkaError, StreamtrainError) as error:
        print(f"producer: error: Kafka at {settings.bootstrap_servers}: {error!r}", file=stderr)
        return EXIT_UNDELIVERED
    return finish(stats, stdout, stderr)


def parse(argv: Sequence[str] | None) -> ProducerSettings:
    parser = argparse.ArgumentParser(prog="python -m producer", description=DESCRIPTION)
    add_settings_arguments(parser, ProducerSettings)
    return build_settings(ProducerSettings, parser.parse_args(argv))


def run(settings: ProducerSettings, registry: CollectorRegistry, stderr: TextIO) -> RunStats:
    """Steps: source, metrics, topics, client; publish; close the client."""
    source, stream = build_source(settings)
    metrics = ProducerMetrics.create(registry)
    if settings.metrics_port:
        serve_metrics(registry, settings)
    create_topics(settings)

    producer = make_producer(
        settings, linger_ms=settings.linger_ms, batch_size=settings.batch_bytes
    )
    try:
        options = publish_options(settings, producer)
        observers = build_observers(settings, stream, stderr)
        publisher = Publisher(producer, options, metrics, observers=observers)
        log.info(
            "publishing topic=%s source=%s dim=%d count=%s rate=%s key=%s",
            settings.topic, settings.source.value, source.dim, settings.count or "endless",
            settings.rate or "max", settings.key,
        )
        with stop_on_signals(publisher):
            return publisher.run(source)
    finally:
        close_quietly(producer, settings.flush_timeout)


def serve_metrics(registry: CollectorRegistry, settings: ProducerSettings) -> None:
    try:
        serve(registry, settings.metrics_port, settings.metrics_address)
    except OSError as error:
        raise ConfigError(
            f"--metrics-port {settings.metrics_port} on {settings.metrics_address}: "
            f"{error.strerror}"
        ) from None


def close_quietly(producer: Any, timeout_s: float) -> None:
    """Close the client; a failure here changes nothing already counted."""
    try:
        producer.close(timeout=timeout_s)
    except KafkaError as error:
        log.warning("closing the Kafka producer failed: %r", error)


def build_source(settings: ProducerSettings) -> tuple[Any, SyntheticStream | None]:
    """The sample source, and the synthetic stream behind it if any.

    :raises ConfigError: if the file's feature count contradicts an
        explicitly set dimension, or a needed setting is missing.
    """
    if settings.source is Source.FILE:
        return build_file_source(settings), None
    stream = SyntheticStream(
        settings.dim,
        settings.seed,
        noise=settings.noise,
        distribution=settings.feature_distribution.value,
        drift=settings.drift.value,
        drift_at=settings.drift_at,
        drift_scale=settings.drift_scale,
        truth_every=settings.truth_every,
    )
    try:
        return SyntheticSource(stream, settings.key_field), stream
    except ValueError as error:
        raise ConfigError(f"--key / PRODUCER_KEY: {error}") from None


def build_file_source(settings: ProducerSettings) -> FileSource:
    if settings.file is None:
        raise ConfigError("--source file needs --file / PRODUCER_FILE")
    source = FileSource(
        settings.file,
        file_format=settings.file_format.value if settings.file_format else None,
        target_column=settings.target_column,
        feature_columns=settings.feature_column_list,
        key_field=settings.key_field,
        skip_bad_rows=settings.skip_bad_rows,
    )
    if "dim" in settings.model_fields_set and source.dim != settings.dim:
        source.close()
        raise ConfigError(
            f"{settings.file} has {source.dim} feature columns {source.features}, "
            f"but --dim / STREAMTRAIN_DIM is {settings.dim}"
        )
    return source


def create_topics(settings: ProducerSettings) -> None:
    """Create the sample and dead-letter topics if missing.

    An explicit ``--partitions`` also checks that an existing sample topic
    has that many partitions and ``retention.ms=-1``; without it an
    existing topic is used as it is.
    """
    specs = [
        sample_topic(settings.topic, settings.partitions),
        dead_letter_topic(settings.dead_letter_topic),
    ]
    admin = make_admin(settings)
    try:
        if "partitions" not in settings.model_fields_set:
            existing = set(admin.list_topics())
            specs = [spec for spec in specs if spec.name not in existing]
        ensure_topics(admin, specs)
    finally:
        admin.close()


def publish_options(settings: ProducerSettings, producer: Any) -> PublishOptions:
    partitions = None
    if settings.key == "round-robin":
        partitions = len(producer.partitions_for(settings.topic))
    return PublishOptions(
        topic=settings.topic,
        count=settings.count,
        rate=settings.rate,
        block_size=settings.block_size,
        partitions=partitions,
        event_time=settings.event_time,
        flush_timeout_s=settings.flush_timeout,
    )


def build_observers(
    settings: ProducerSettings, stream: SyntheticStream | None, stderr: TextIO
) -> list[Observer]:
    clock = Clocks().monotonic
    observers: list[Observer] = []
    mode = settings.progress
    if mode is Progress.AUTO:
        mode = Progress.BAR if stderr.isatty() else Progress.LOG
    if mode is Progress.BAR:
        observers.append(ProgressBar(settings.count, stderr))
    elif mode is Progress.LOG:
        observers.append(ProgressLog(settings.progress_interval, clock))
    if settings.truth_file is not None:
        if stream is None:
            raise ConfigError("--truth-file applies to the synthetic source only")
        observers.append(
            TruthWriter(stream, settings.truth_file, settings.progress_interval, clock)
        )
    return observers


@contextlib.contextmanager
def stop_on_signals(publisher: Publisher) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT stop the publisher gracefully."""

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        log.warning("%s received: stopping, flushing what was sent", name)
        publisher.request_stop(name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def finish(stats: RunStats, stdout: TextIO, stderr: TextIO) -> int:
    """Print both reports; return the exit code."""
    print(describe(stats), file=stderr)
    if stats.input_error:
        print(f"producer: error: {stats.input_error}", file=stderr)
    print(json.dumps(stats.report()), file=stdout, flush=True)
    if stats.failed:
        return EXIT_UNDELIVERED
    return EXIT_BAD_INPUT if stats.input_error else EXIT_OK
