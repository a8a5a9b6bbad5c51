"""Settings: one frozen object per service, from flags, environment, defaults.

Each service declares a :class:`pydantic_settings.BaseSettings` subclass
whose fields carry their environment variable name as ``validation_alias``
(so every name stands in one place) and a ``description``.
:func:`parse_settings` turns such a class into an ``argparse`` command line
with one ``--flag`` per field, the variable named in ``--help``, and builds
the frozen object with this precedence: flag, then environment variable,
then default. Secrets are :class:`pydantic.SecretStr`: they print as
``**********`` in logs, reprs and ``--help``.

:class:`KafkaSettings` holds the client settings every service shares.
"""

from __future__ import annotations

import argparse
import enum
import typing
from typing import Any, Sequence, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamtrain.errors import ConfigError

S = TypeVar("S", bound=BaseSettings)

FROZEN = SettingsConfigDict(frozen=True, populate_by_name=True, extra="ignore")


def env(name: str, default: Any, description: str, **kwargs: Any) -> Any:
    """Declare a setting read from environment variable ``name``."""
    return Field(default, validation_alias=name, description=description, **kwargs)


class SecurityProtocol(str, enum.Enum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class KafkaSettings(BaseSettings):
    """Kafka client settings shared by every service."""

    model_config = FROZEN

    bootstrap_servers: str = env(
        "KAFKA_BOOTSTRAP_SERVERS", "localhost:9092", "Kafka bootstrap servers, host:port[,...]"
    )
    security_protocol: SecurityProtocol = env(
        "KAFKA_SECURITY_PROTOCOL", SecurityProtocol.PLAINTEXT, "Kafka security protocol"
    )
    sasl_mechanism: str | None = env(
        "KAFKA_SASL_MECHANISM", None, "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    sasl_username: str | None = env("KAFKA_SASL_USERNAME", None, "SASL user name")
    sasl_password: SecretStr | None = env("KAFKA_SASL_PASSWORD", None, "SASL password (secret)")
    ssl_cafile: str | None = env("KAFKA_SSL_CAFILE", None, "CA bundle to verify the brokers")
    ssl_certfile: str | None = env("KAFKA_SSL_CERTFILE", None, "client certificate (PEM)")
    ssl_keyfile: str | None = env("KAFKA_SSL_KEYFILE", None, "client private key (PEM)")
    ssl_password: SecretStr | None = env(
        "KAFKA_SSL_PASSWORD", None, "password of the client private key (secret)"
    )


def env_name(field: FieldInfo, name: str) -> str:
    """The environment variable a field is read from."""
    alias = field.validation_alias
    return alias if isinstance(alias, str) else name.upper()


def add_settings_arguments(parser: argparse.ArgumentParser, cls: type[BaseSettings]) -> None:
    """Add one ``--flag`` per field of ``cls``; unset flags stay absent."""
    group = parser.add_argument_group(f"{cls.__name__} (flag, then environment, then default)")
    for name, field in cls.model_fields.items():
        flag = "--" + name.replace("_", "-")
        shown = "**********" if _is_secret(field) and field.default else field.default
        if isinstance(shown, enum.Enum):
            shown = shown.value
        text = f"{field.description or ''} [env {env_name(field, name)}; default {shown}]"
        kwargs: dict[str, Any] = {"help": text.replace("%", "%%"), "default": argparse.SUPPRESS}
        if field.annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = name.upper()
            choices = _enum_choices(field.annotation)
            if choices:
                kwargs["choices"] = choices
        group.add_argument(flag, dest=name, **kwargs)


def build_settings(cls: type[S], namespace: argparse.Namespace) -> S:
    """Build the frozen settings from parsed flags and the environment.

    :raises ConfigError: naming every invalid value and what was expected.
    """
    given = {
        name: getattr(namespace, name) for name in cls.model_fields if hasattr(namespace, name)
    }
    try:
        return cls(**given)
    except ValidationError as error:
        problems = "; ".join(
            f"{_describe(cls, err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in error.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None


def parse_settings(
    cls: type[S], argv: Sequence[str] | None = None, *, prog: str, description: str
) -> S:
    """Parse a command line made of ``cls``'s fields alone."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_settings_arguments(parser, cls)
    return build_settings(cls, parser.parse_args(argv))


def kafka_client_config(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for kafka-python clients from ``settings``."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.security_protocol.value,
    }
    optional = {
        "sasl_mechanism": settings.sasl_mechanism,
        "sasl_plain_username": settings.sasl_username,
        "sasl_plain_password": _reveal(settings.sasl_password),
        "ssl_cafile": settings.ssl_cafile,
        "ssl_certfile": settings.ssl_certfile,
        "ssl_keyfile": settings.ssl_keyfile,
        "ssl_password": _reveal(settings.ssl_password),
    }
    config.update({key: value for key, value in optional.items() if value is not None})
    return config


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _is_secret(field: FieldInfo) -> bool:
    return SecretStr in (field.annotation, *typing.get_args(field.annotation))


def _enum_choices(annotation: Any) -> list[str] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return [member.value for member in candidate]
    return None


def _describe(cls: type[BaseSettings], loc: tuple) -> str:
    """Name a field by its flag and environment variable."""
    name = str(loc[0]) if loc else "?"
    for field_name, field in cls.model_fields.items():
        if name in (field_name, env_name(field, field_name)):
            return f"--{field_name.replace('_', '-')} / {env_name(field, field_name)}"
    return name


class StreamSettings(KafkaSettings):
    """Kafka client settings plus the stream every service shares.

    Service settings subclass this and add their own fields.
    """

    topic: str = env("STREAMTRAIN_TOPIC", "samples", "sample topic")
    dead_letter_topic: str = env(
        "STREAMTRAIN_DEAD_LETTER_TOPIC",
        "samples.dlq",
        "topic for rejected messages (default: the sample topic's name + .dlq)",
    )
    dim: int = env("STREAMTRAIN_DIM", 10, "number of features of every sample", ge=1, le=100_000)
    max_message_bytes: int = env(
        "STREAMTRAIN_MAX_MESSAGE_BYTES", 1 << 20, "samples longer than this are rejected", ge=32
    )
    log_level: str = env("STREAMTRAIN_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR")

    @model_validator(mode="before")
    @classmethod
    def _dead_letter_topic_follows_topic(cls, data: Any) -> Any:
        """Without an explicit dead-letter topic, use ``<topic>.dlq``."""
        if not isinstance(data, dict):
            return data
        keys = {key.lower() for key, value in data.items() if value is not None}
        if keys & {"dead_letter_topic", "streamtrain_dead_letter_topic"}:
            return data
        topic = next(
            (
                v
                for k, v in data.items()
                if k.lower() in ("topic", "streamtrain_topic") and v is not None
            ),
            "samples",
        )
        return {**data, "dead_letter_topic": f"{topic}.dlq"}
