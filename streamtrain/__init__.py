"""streamtrain: train a model online and in batch on the same Kafka stream.

This package is the shared core the services meet through: settings
(:mod:`.settings`), the sample wire format (:mod:`.wire`), topics and
clients (:mod:`.topics`, :mod:`.clients`), the dead-letter topic
(:mod:`.deadletter`) and the local broker launcher (:mod:`.localkafka`).
"""

__version__ = "0.1.0"
