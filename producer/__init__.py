"""The pipeline's source: publishes samples to the sample topic.

Modules: :mod:`producer.synthetic` (the synthetic generator, usable as a
library), :mod:`producer.truth` (the true weights and their file),
:mod:`producer.files` (CSV and JSON Lines input), :mod:`producer.publisher`
(sending and delivery accounting), :mod:`producer.app` (the command line).
"""
