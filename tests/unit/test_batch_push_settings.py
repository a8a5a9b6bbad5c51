"""Pushed metric values and the batch settings, without a network."""

import pytest

from batch_job.push import PushError, RunOutcome, push_failure, success_registry
from batch_job.settings import BatchSettings, ScheduleSettings, parse_duration
from streamtrain.wire import REASONS


def outcome(**overrides) -> RunOutcome:
    values = dict(finished_at=1700.0, duration_s=2.5, samples=10, rejected={"empty": 2},
                  mse=0.25, online_mse=None, online_weights_distance=None)
    values.update(overrides)
    return RunOutcome(**values)


def test_success_registry_holds_run_values():
    registry = success_registry(outcome())
    get = registry.get_sample_value
    assert get("streamtrain_batch_last_success_timestamp_seconds") == 1700.0
    assert get("streamtrain_batch_duration_seconds") == 2.5
    assert get("streamtrain_batch_samples") == 10
    assert get("streamtrain_batch_mse") == 0.25
    assert get("streamtrain_batch_rejected_samples", {"reason": "empty"}) == 2
    assert get("streamtrain_batch_rejected_samples", {"reason": "bad_magic"}) == 0


def test_success_registry_unknown_online_mse_is_absent_not_nan():
    registry = success_registry(outcome())
    assert registry.get_sample_value("streamtrain_batch_online_mse") is None
    assert registry.get_sample_value("streamtrain_batch_last_failure_timestamp_seconds") is None
    names = {m.name for m in registry.collect()}
    assert len(REASONS) == 9 and "streamtrain_batch_rejected_samples" in names


def test_push_failure_unreachable_gateway_raises_naming_url():
    with pytest.raises(PushError, match="127.0.0.1:9"):
        push_failure("http://127.0.0.1:9", 1.0, timeout_s=2)


@pytest.mark.parametrize("text,seconds", [("45s", 45), ("30m", 1800), ("1h30m", 5400),
                                          ("2d", 172800)])
def test_parse_duration_valid_gives_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "5x", "1h 2m", "0s", "m30"])
def test_parse_duration_invalid_raises_naming_text(text):
    with pytest.raises(ValueError, match=repr(text)):
        parse_duration(text)


def test_schedule_settings_need_exactly_one_of_every_and_cron():
    with pytest.raises(ValueError, match="exactly one"):
        ScheduleSettings(every="1m", cron="* * * * *")
    with pytest.raises(ValueError, match="not valid"):
        ScheduleSettings(cron="every day")
    assert ScheduleSettings(cron="*/30 * * * *").cron == "*/30 * * * *"


def test_batch_settings_defaults():
    settings = BatchSettings()
    assert (settings.models_dir, settings.keep, settings.workers) == ("./models", 10, 1)
    assert settings.pushgateway is None and settings.online_model is None
