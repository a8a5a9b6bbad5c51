"""Exceptions of the producer.

::

    StreamtrainError
    └── ProducerError
        └── InputError     the input file cannot be read as samples (exit 2)
"""

from __future__ import annotations

from streamtrain.errors import StreamtrainError


class ProducerError(StreamtrainError):
    """Base class of the producer's own failures."""


class InputError(ProducerError):
    """An input file or one of its rows is not usable; the message names the
    file, the line and the offending value."""
