"""Settings of ``python -m consumer``: the stream, the group, the learner,
checkpoints, metrics and when to stop. Every field has a ``CONSUMER_*``
environment variable (the shared ones are listed in the README)."""

from __future__ import annotations

import enum
from pathlib import Path

from streamtrain.learners import LearnerConfig
from streamtrain.settings import StreamSettings, env


class LearnerKind(str, enum.Enum):
    SGD = "sgd"
    ADAGRAD = "adagrad"
    RLS = "rls"


class Schedule(str, enum.Enum):
    CONSTANT = "constant"
    INVSCALING = "invscaling"


class ConsumerSettings(StreamSettings):
    """Everything the online learner needs, frozen once at start-up."""

    group_id: str = env("CONSUMER_GROUP_ID", "streamtrain-online", "consumer group id")
    session_timeout_ms: int = env(
        "CONSUMER_SESSION_TIMEOUT_MS", 10_000,
        "group session timeout: how soon the partitions of a dead member move", ge=1000,
    )
    checkpoint_dir: Path = env(
        "CONSUMER_CHECKPOINT_DIR", Path("checkpoints"),
        "directory of the per-partition checkpoints and model.json (shared by the group)",
    )
    learner: LearnerKind = env("CONSUMER_LEARNER", LearnerKind.SGD, "online learner")
    learning_rate: float = env(
        "CONSUMER_LEARNING_RATE", 0.01, "step size of sgd and adagrad", gt=0
    )
    schedule: Schedule = env(
        "CONSUMER_SCHEDULE", Schedule.CONSTANT,
        "learning-rate schedule: constant, or invscaling (rate / t^power_t)",
    )
    power_t: float = env("CONSUMER_POWER_T", 0.25, "exponent of the invscaling schedule", ge=0)
    l2: float = env("CONSUMER_L2", 0.0, "L2 penalty l2/2*|w|^2 on the weights (not the bias)",
                    ge=0)
    clip_norm: float = env(
        "CONSUMER_CLIP_NORM", 0.0, "clip each gradient to this Euclidean norm (0: no clip)", ge=0
    )
    forgetting_factor: float = env(
        "CONSUMER_FORGETTING_FACTOR", 1.0, "rls forgetting factor in (0, 1]; 1 forgets nothing",
        gt=0, le=1,
    )
    rls_delta: float = env(
        "CONSUMER_RLS_DELTA", 1e-3,
        "rls starts with P = I/delta (a ridge penalty delta on weights and bias)", gt=0,
    )
    checkpoint_every: int = env(
        "CONSUMER_CHECKPOINT_EVERY", 10_000, "checkpoint after this many messages", ge=1
    )
    checkpoint_interval: float = env(
        "CONSUMER_CHECKPOINT_INTERVAL", 30.0, "checkpoint at least this often, seconds", gt=0
    )
    metrics_port: int = env(
        "CONSUMER_METRICS_PORT", 0, "serve /metrics on this port (0: no endpoint)", ge=0,
        le=65535,
    )
    metrics_address: str = env("CONSUMER_METRICS_ADDRESS", "0.0.0.0", "address of /metrics")
    until_idle: float | None = env(
        "CONSUMER_UNTIL_IDLE", None,
        "exit once no message arrived for this many seconds since the last assignment "
        "(before the first assignment, 60 s more)", gt=0,
    )
    max_messages: int | None = env(
        "CONSUMER_MAX_MESSAGES", None, "exit after this many messages (samples and rejects)",
        ge=1,
    )

    def learner_config(self) -> LearnerConfig:
        return LearnerConfig(
            kind=self.learner.value,
            learning_rate=self.learning_rate,
            schedule=self.schedule.value,
            power_t=self.power_t,
            l2=self.l2,
            clip_norm=self.clip_norm,
            forgetting_factor=self.forgetting_factor,
            rls_delta=self.rls_delta,
        )
