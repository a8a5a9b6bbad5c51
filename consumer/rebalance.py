"""The rebalance listener: partitions move together with their state.

kafka-python runs these callbacks on its network thread, so they do local
work only (checkpoint files, ``seek``), never a commit or a produce-and-
wait. Offsets are committed by the main loop after each checkpoint.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kafka import ConsumerRebalanceListener

if TYPE_CHECKING:
    from consumer.app import Worker

log = logging.getLogger(__name__)


class StateListener(ConsumerRebalanceListener):
    """Hands assigned and revoked partitions to the :class:`Worker`.

    - assigned: load the partition's checkpoint and seek to its offset
      (the earliest offset when there is none);
    - revoked: checkpoint the partition, then forget it;
    - lost (evicted from the group): forget it without writing, since a
      new owner may already be working from the checkpoint on disk.
    """

    def __init__(self, worker: "Worker") -> None:
        self.worker = worker

    def on_partitions_assigned(self, assigned) -> None:
        self.worker.adopt(sorted(tp.partition for tp in assigned))

    def on_partitions_revoked(self, revoked) -> None:
        self.worker.release(sorted(tp.partition for tp in revoked), save=True)

    def on_partitions_lost(self, lost) -> None:
        log.warning("partitions lost (evicted from the group): %s",
                    sorted(tp.partition for tp in lost))
        self.worker.release(sorted(tp.partition for tp in lost), save=False)
