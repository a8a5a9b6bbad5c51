"""A real Pushgateway for the batch job's tests (imported by them).

Starts Debian's ``prometheus-pushgateway`` on a free loopback port without
persistence and stops it after the test.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests import servers
from tests.conftest import free_port


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """URL of a fresh Pushgateway without persistence, stopped after the test."""
    with servers.pushgateway(free_port(), tmp_path) as url:
        yield url


def scrape(url: str) -> dict[str, float]:
    """The Pushgateway's streamtrain_batch samples: 'name{labels}' -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("streamtrain_batch_"):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples
