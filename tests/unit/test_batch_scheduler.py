"""The scheduler loop, driven in-process by a fake clock."""

from datetime import datetime, timezone

import pytest

from batch_job.scheduler import Cron, Every, Scheduler


class FakeTime:
    """A clock that advances only when waited on or when a job runs."""

    def __init__(self, start: float = 1_000_000.0, job_seconds: float = 0.0) -> None:
        self.now = start
        self.job_seconds = job_seconds
        self.waits: list[float] = []
        self.starts: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False

    def job(self) -> bool:
        self.starts.append(self.now)
        self.now += self.job_seconds
        return True


def test_every_first_run_immediately_then_each_interval():
    fake = FakeTime(job_seconds=5)
    scheduler = Scheduler(fake.job, Every(60), clock=fake.clock, wait=fake.wait)
    assert scheduler.run(max_runs=3) == 3
    assert fake.starts == [1_000_000.0, 1_000_060.0, 1_000_120.0]


def test_every_overrunning_job_skips_missed_slots_without_overlap():
    fake = FakeTime(job_seconds=130)
    scheduler = Scheduler(fake.job, Every(60), clock=fake.clock, wait=fake.wait)
    scheduler.run(max_runs=3)
    assert fake.starts == [1_000_000.0, 1_000_180.0, 1_000_360.0]
    assert all(b - a >= 130 for a, b in zip(fake.starts, fake.starts[1:]))


def test_cron_runs_at_matching_utc_times():
    start = datetime(2026, 1, 1, 10, 7, tzinfo=timezone.utc).timestamp()
    fake = FakeTime(start=start, job_seconds=1)
    Scheduler(fake.job, Cron("*/30 * * * *"), clock=fake.clock, wait=fake.wait).run(max_runs=2)
    assert [datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M") for t in fake.starts] == [
        "10:30", "11:00",
    ]


def test_stop_during_wait_ends_loop_without_running():
    fake = FakeTime()
    calls = []
    scheduler = Scheduler(lambda: calls.append(1) or True, Cron("0 0 * * *"),
                          clock=fake.clock, wait=lambda s: True)
    assert scheduler.run() == 0
    assert calls == []


def test_stop_during_run_finishes_run_then_returns():
    fake = FakeTime()

    def job() -> bool:
        scheduler.stop()
        return True

    scheduler = Scheduler(job, Every(10), clock=fake.clock, wait=fake.wait)
    assert scheduler.run() == 1


def test_failing_job_is_counted_and_schedule_goes_on():
    fake = FakeTime()

    def job() -> bool:
        raise RuntimeError("boom")

    scheduler = Scheduler(job, Every(10), clock=fake.clock, wait=fake.wait)
    assert scheduler.run(max_runs=2) == 2
    assert scheduler.failures == 2


def test_next_run_is_logged(caplog):
    caplog.set_level("INFO")
    fake = FakeTime()
    Scheduler(fake.job, Every(60), clock=fake.clock, wait=fake.wait).run(max_runs=1)
    assert "next run due at 1970-01-12T13:46:40+00:00" in caplog.text


def test_invalid_plans_raise_naming_value():
    with pytest.raises(ValueError, match="'61 \\* \\* \\* \\*'"):
        Cron("61 * * * *")
    with pytest.raises(ValueError, match="got 0"):
        Every(0)
