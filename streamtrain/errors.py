"""Exceptions shared by every streamtrain service.

All of them derive from :class:`StreamtrainError`, so a service's top level
can tell the project's own failures (reported with a clear message, exit
code 1 or 2) from bugs (a traceback).

::

    StreamtrainError
    ├── ConfigError          a setting has a value that cannot work
    ├── TopicConfigError     an existing topic conflicts with what is needed
    ├── SampleError          a message is not a valid sample (has .reason)
    └── ArtifactError        a checkpoint or model file cannot be trusted
"""

from __future__ import annotations


class StreamtrainError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(StreamtrainError):
    """A setting has a value that cannot work; the message names it."""


class TopicConfigError(StreamtrainError):
    """A topic exists with settings that conflict with the requested ones."""


class ArtifactError(StreamtrainError):
    """A checkpoint or model file is missing, damaged or of another version."""
