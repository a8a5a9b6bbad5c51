import argparse

import pytest

from streamtrain.errors import ConfigError
from streamtrain.settings import (
    KafkaSettings, add_settings_arguments, build_settings, kafka_client_config, parse_settings,
)


def parse(argv):
    return parse_settings(KafkaSettings, argv, prog="t", description="d")


def test_flag_overrides_environment_which_overrides_default(monkeypatch):
    assert parse([]).bootstrap_servers == "localhost:9092"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:1")
    assert parse([]).bootstrap_servers == "env:1"
    assert parse(["--bootstrap-servers", "flag:2"]).bootstrap_servers == "flag:2"


def test_secret_is_masked_in_repr_and_revealed_to_the_client(monkeypatch):
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter2")
    settings = parse(["--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN",
                      "--sasl-username", "u"])
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    config = kafka_client_config(settings)
    assert config["sasl_plain_password"] == "hunter2"
    assert config["security_protocol"] == "SASL_SSL"
    assert config["bootstrap_servers"] == ["localhost:9092"]


def test_help_names_every_environment_variable(capsys):
    with pytest.raises(SystemExit):
        parse(["--help"])
    text = capsys.readouterr().out
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CAFILE"):
        assert name in text


def test_invalid_value_names_flag_and_variable(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "CARRIER_PIGEON")
    with pytest.raises(ConfigError, match="--security-protocol / KAFKA_SECURITY_PROTOCOL"):
        build_settings(KafkaSettings, argparse.Namespace())


def test_settings_are_frozen():
    settings = parse([])
    with pytest.raises(Exception):
        settings.bootstrap_servers = "x"


def test_unknown_choice_is_refused_by_the_parser():
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, KafkaSettings)
    with pytest.raises(SystemExit):
        parser.parse_args(["--security-protocol", "NOPE"])


def test_dead_letter_topic_follows_the_sample_topic_unless_given(monkeypatch):
    from streamtrain.settings import StreamSettings

    assert StreamSettings(topic="clicks").dead_letter_topic == "clicks.dlq"
    monkeypatch.setenv("STREAMTRAIN_TOPIC", "from-env")
    assert StreamSettings().dead_letter_topic == "from-env.dlq"
    monkeypatch.setenv("STREAMTRAIN_DEAD_LETTER_TOPIC", "rejects")
    assert StreamSettings(topic="clicks").dead_letter_topic == "rejects"
