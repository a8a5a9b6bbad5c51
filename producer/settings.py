"""The producer's settings: every flag, its environment variable, its default.

:class:`ProducerSettings` extends :class:`StreamSettings` (topic,
dimension, Kafka client and SASL/SSL settings) with the source, the
publishing and the observability options. ``python -m producer --help``
lists them all with their variables.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path

from pydantic import field_validator

from streamtrain.settings import FROZEN, StreamSettings, env

_KEY_PATTERN = re.compile(r"^(none|round-robin|field:.+)$")


class Source(str, enum.Enum):
    SYNTHETIC = "synthetic"
    FILE = "file"


class Distribution(str, enum.Enum):
    NORMAL = "normal"
    UNIFORM = "uniform"


class Drift(str, enum.Enum):
    NONE = "none"
    ABRUPT = "abrupt"
    GRADUAL = "gradual"


class FileFormat(str, enum.Enum):
    CSV = "csv"
    JSONL = "jsonl"


class Progress(str, enum.Enum):
    AUTO = "auto"
    BAR = "bar"
    LOG = "log"
    OFF = "off"


class ProducerSettings(StreamSettings):
    """Everything ``python -m producer`` is configured with (frozen)."""

    model_config = FROZEN

    source: Source = env("PRODUCER_SOURCE", Source.SYNTHETIC, "synthetic or file")
    count: int = env(
        "PRODUCER_COUNT", 0, "samples to publish; 0 = endless (file: whole file)", ge=0
    )
    rate: float = env("PRODUCER_RATE", 0.0, "messages per second; 0 = as fast as possible", ge=0)
    seed: int = env("PRODUCER_SEED", 0, "synthetic: random seed", ge=0)
    noise: float = env("PRODUCER_NOISE", 0.1, "synthetic: standard deviation of the noise", ge=0)
    feature_distribution: Distribution = env(
        "PRODUCER_FEATURE_DISTRIBUTION",
        Distribution.NORMAL,
        "synthetic: features drawn from N(0,1) or uniform on [-sqrt(3), sqrt(3)]",
    )
    drift: Drift = env(
        "PRODUCER_DRIFT", Drift.NONE, "synthetic: concept drift, none, abrupt or gradual"
    )
    drift_at: int = env(
        "PRODUCER_DRIFT_AT",
        1000,
        "abrupt drift: new weights from this sample index (0-based)",
        ge=0,
    )
    drift_scale: float = env(
        "PRODUCER_DRIFT_SCALE",
        1.0,
        "abrupt: std of the change of each weight and the bias; "
        "gradual: the same per 10,000 samples of random walk",
        ge=0,
    )
    truth_every: int = env(
        "PRODUCER_TRUTH_EVERY", 100, "gradual drift: weights step (and are recorded) every N", ge=1
    )
    truth_file: Path | None = env(
        "PRODUCER_TRUTH_FILE", None, "synthetic: write the true weights and drift points here"
    )
    file: Path | None = env("PRODUCER_FILE", None, "file source: CSV or JSON Lines file")
    file_format: FileFormat | None = env(
        "PRODUCER_FILE_FORMAT", None, "file source: csv or jsonl (default: from the extension)"
    )
    target_column: str = env("PRODUCER_TARGET_COLUMN", "y", "file source: the target column")
    feature_columns: str | None = env(
        "PRODUCER_FEATURE_COLUMNS", None, "file source: a,b,c (default: every other column)"
    )
    skip_bad_rows: bool = env(
        "PRODUCER_SKIP_BAD_ROWS", False, "file source: skip and count malformed rows"
    )
    key: str = env("PRODUCER_KEY", "none", "message key: none, round-robin or field:NAME")
    partitions: int = env(
        "PRODUCER_PARTITIONS", 3, "partitions of the sample topic when it is created", ge=1
    )
    event_time: str = env(
        "PRODUCER_EVENT_TIME",
        "wall",
        "wall (clock at generation), none, or MS: a fixed clock starting at MS, "
        "advancing 1000/rate ms per sample (1 ms when rate is 0)",
    )
    metrics_port: int = env("PRODUCER_METRICS_PORT", 0, "Prometheus port; 0 = off", ge=0)
    metrics_address: str = env("PRODUCER_METRICS_ADDRESS", "0.0.0.0", "Prometheus address")
    progress: Progress = env(
        "PRODUCER_PROGRESS", Progress.AUTO, "auto (bar on a terminal, else log), bar, log or off"
    )
    progress_interval: float = env(
        "PRODUCER_PROGRESS_INTERVAL", 10.0, "seconds between progress log lines", gt=0
    )
    block_size: int = env(
        "PRODUCER_BLOCK_SIZE", 2048, "samples generated and encoded at once", ge=1, le=1_000_000
    )
    linger_ms: int = env("PRODUCER_LINGER_MS", 10, "Kafka producer linger.ms", ge=0)
    batch_bytes: int = env("PRODUCER_BATCH_BYTES", 131072, "Kafka producer batch.size", ge=1024)
    flush_timeout: float = env(
        "PRODUCER_FLUSH_TIMEOUT", 150.0, "seconds to wait for acknowledgements at exit", gt=0
    )

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: str) -> str:
        if not _KEY_PATTERN.match(value):
            raise ValueError(f"expected none, round-robin or field:NAME, got {value!r}")
        return value

    @field_validator("event_time")
    @classmethod
    def _check_event_time(cls, value: str) -> str:
        if value not in ("wall", "none") and not value.isdigit():
            raise ValueError(f"expected wall, none or milliseconds since the epoch, got {value!r}")
        return value

    @property
    def key_field(self) -> str | None:
        """The column named by ``--key field:NAME``, else None."""
        return self.key[len("field:") :] if self.key.startswith("field:") else None

    @property
    def feature_column_list(self) -> list[str] | None:
        """``--feature-columns`` split on commas, or None for "all others"."""
        if self.feature_columns is None:
            return None
        return [name.strip() for name in self.feature_columns.split(",") if name.strip()]
