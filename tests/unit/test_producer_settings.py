import pytest

from producer.app import parse
from producer.settings import Drift, Source
from streamtrain.errors import ConfigError


def test_settings_defaults_match_the_documented_interface():
    settings = parse([])
    assert settings.source is Source.SYNTHETIC and settings.drift is Drift.NONE
    assert (settings.count, settings.rate, settings.seed, settings.noise) == (0, 0.0, 0, 0.1)
    assert (settings.key, settings.partitions, settings.metrics_port) == ("none", 3, 0)
    assert settings.metrics_address == "0.0.0.0" and settings.target_column == "y"
    assert settings.truth_every == 100 and settings.skip_bad_rows is False


def test_settings_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("PRODUCER_COUNT", "12")
    monkeypatch.setenv("PRODUCER_KEY", "field:user")
    monkeypatch.setenv("PRODUCER_FEATURE_COLUMNS", "a, b")
    monkeypatch.setenv("PRODUCER_SKIP_BAD_ROWS", "true")
    settings = parse([])
    assert settings.count == 12 and settings.key_field == "user"
    assert settings.feature_column_list == ["a", "b"] and settings.skip_bad_rows


def test_settings_flag_beats_environment(monkeypatch):
    monkeypatch.setenv("PRODUCER_SEED", "3")
    assert parse(["--seed", "4"]).seed == 4


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--key", "hash"], "--key / PRODUCER_KEY"),
        (["--event-time", "yesterday"], "--event-time / PRODUCER_EVENT_TIME"),
        (["--rate", "-1"], "--rate / PRODUCER_RATE"),
    ],
)
def test_settings_bad_value_names_flag_and_variable(argv, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse(argv)


def test_settings_help_names_every_producer_variable(capsys):
    with pytest.raises(SystemExit):
        parse(["--help"])
    text = capsys.readouterr().out
    names = ("PRODUCER_SOURCE", "PRODUCER_DRIFT_AT", "PRODUCER_METRICS_PORT", "KAFKA_SASL_PASSWORD")
    for name in names:
        assert name in text
