"""Settings of the batch job: one frozen object per command.

:class:`BatchSettings` (``run``) adds to the shared stream settings where
models go, how to train and where to push metrics; :class:`ScheduleSettings`
(``schedule``) adds the schedule. Every field is also an environment
variable (``BATCH_*``), listed by ``python -m batch_job run --help``.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path

from croniter import croniter
from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings

from streamtrain.settings import FROZEN, StreamSettings, env

_DURATION_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Method(str, enum.Enum):
    LSTSQ = "lstsq"
    GD = "gd"


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``45s``, ``30m``, ``1h30m`` or ``2d``.

    :raises ValueError: naming the text and the expected form.
    """
    compact = text.strip().lower()
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"duration {text!r} is not like 45s, 30m, 1h30m or 2d")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return float(seconds)


class BatchSettings(StreamSettings):
    """Settings of ``python -m batch_job run``."""

    models_dir: str = env("BATCH_MODELS_DIR", "./models", "directory of the model versions")
    keep: int = env("BATCH_KEEP", 10, "old model versions kept besides the latest", ge=0)
    online_model: str | None = env(
        "BATCH_ONLINE_MODEL", None, "the online learner's model file, to compare with"
    )
    method: Method = env("BATCH_METHOD", Method.LSTSQ, "lstsq (exact) or gd (gradient descent)")
    ridge: float = env("BATCH_RIDGE", 0.0, "ridge penalty on the weights (not the bias)", ge=0)
    gd_steps: int = env("BATCH_GD_STEPS", 1000, "gradient descent steps", ge=0)
    gd_learning_rate: float = env(
        "BATCH_GD_LEARNING_RATE", 0.01, "gradient descent step size", gt=0
    )
    workers: int = env("BATCH_WORKERS", 1, "processes replaying partitions in parallel", ge=1)
    block_rows: int = env(
        "BATCH_BLOCK_ROWS", 512, "rows folded into the QR factor at a time", ge=1, le=1 << 20
    )
    idle_timeout_s: float = env(
        "BATCH_IDLE_TIMEOUT_S", 60.0, "fail if a partition returns nothing for this long", gt=0
    )
    pushgateway: str | None = env(
        "BATCH_PUSHGATEWAY_URL", None, "Pushgateway URL (host:port or http://...); none: no push"
    )
    push_timeout_s: float = env("BATCH_PUSH_TIMEOUT_S", 10.0, "Pushgateway request timeout", gt=0)


class ScheduleSettings(BatchSettings):
    """Settings of ``python -m batch_job schedule``: one of every or cron."""

    every: str | None = env("BATCH_EVERY", None, "run now, then every interval (30m, 1h, ...)")
    cron: str | None = env("BATCH_CRON", None, "run at the times of a cron expression (UTC)")

    @field_validator("every")
    @classmethod
    def _check_every(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"cron expression {value!r} is not valid (e.g. '*/30 * * * *')")
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> "ScheduleSettings":
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of --every and --cron")
        return self


class ReportSettings(BaseSettings):
    """Settings of ``python -m batch_job report``."""

    model_config = FROZEN

    run_dir: Path = env(
        "BATCH_REPORT_RUN_DIR", Path("runs/demo"),
        "run directory written by python -m streamtrain.demo",
    )
    log_level: str = env("STREAMTRAIN_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR")
