"""Creating the topics the pipeline needs, idempotently.

The sample topic keeps its data forever (``retention.ms=-1``): the batch
job replays it from the beginning. The dead-letter topic receives every
message a service rejects, with the reason in a header.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streamtrain.errors import TopicConfigError

log = logging.getLogger(__name__)

SAMPLE_TOPIC_CONFIG = {"retention.ms": "-1"}
DEAD_LETTER_TOPIC_CONFIG = {"retention.ms": str(30 * 24 * 3600 * 1000)}


@dataclass(frozen=True)
class TopicSpec:
    """What a topic must look like."""

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


def sample_topic(name: str, partitions: int, replication_factor: int = 1) -> TopicSpec:
    return TopicSpec(name, partitions, dict(SAMPLE_TOPIC_CONFIG), replication_factor)


def dead_letter_topic(name: str, replication_factor: int = 1) -> TopicSpec:
    return TopicSpec(name, 1, dict(DEAD_LETTER_TOPIC_CONFIG), replication_factor)


def ensure_topics(admin: KafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
    """Create each topic unless it exists; return the names created.

    A topic that exists with the same partition count and configuration
    values is accepted as it is.

    :raises TopicConfigError: if an existing topic has another partition
        count or another value for one of the requested configurations.
    """
    created = []
    for spec in specs:
        if _create(admin, spec):
            log.info(
                "created topic %s partitions=%d configs=%s",
                spec.name,
                spec.partitions,
                spec.configs,
            )
            created.append(spec.name)
        else:
            _check_existing(admin, spec)
    return created


def _create(admin: KafkaAdminClient, spec: TopicSpec) -> bool:
    topic = NewTopic(
        spec.name, spec.partitions, spec.replication_factor, topic_configs=spec.configs
    )
    try:
        admin.create_topics([topic], wait_for_metadata=True)
    except TopicAlreadyExistsError:
        return False
    return True


def _check_existing(admin: KafkaAdminClient, spec: TopicSpec) -> None:
    described = admin.describe_topics([spec.name])[0]
    partitions = len(described["partitions"])
    if partitions != spec.partitions:
        raise TopicConfigError(
            f"topic {spec.name} exists with {partitions} partitions, expected {spec.partitions}"
        )
    resource = ConfigResource(ConfigResourceType.TOPIC, spec.name, list(spec.configs) or None)
    actual = admin.describe_configs([resource], config_filter="all")["topic"][spec.name]
    for key, wanted in spec.configs.items():
        value = actual.get(key, {}).get("value")
        if value != wanted:
            raise TopicConfigError(
                f"topic {spec.name} exists with {key}={value}, expected {key}={wanted}"
            )


def main(argv: list[str] | None = None) -> int:
    """``python -m streamtrain.topics``: create the sample and dead-letter topics."""
    import argparse

    from streamtrain.clients import make_admin
    from streamtrain.errors import StreamtrainError
    from streamtrain.logs import configure_logging
    from streamtrain.settings import StreamSettings, add_settings_arguments, build_settings

    parser = argparse.ArgumentParser(
        prog="python -m streamtrain.topics",
        description="Create the sample topic (retention.ms=-1) and the dead-letter topic; "
        "existing topics with the same settings are left as they are.",
    )
    parser.add_argument("--partitions", type=int, default=3, help="partitions of the sample topic")
    parser.add_argument("--replication-factor", type=int, default=1)
    add_settings_arguments(parser, StreamSettings)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        settings = build_settings(StreamSettings, args)
        admin = make_admin(settings)
        try:
            ensure_topics(
                admin,
                [
                    sample_topic(settings.topic, args.partitions, args.replication_factor),
                    dead_letter_topic(settings.dead_letter_topic, args.replication_factor),
                ],
            )
        finally:
            admin.close()
    except StreamtrainError as error:
        log.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
