"""Cost of decoding one sample: JSON against the binary format, one by one
and a fetched batch at once. Run: ``.venv/bin/python -m benchmarks.wire_decode``."""

from __future__ import annotations

import json
import timeit

import numpy as np

from streamtrain import wire


def main(dim: int = 10, batch: int = 500) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=dim), 1.5
    as_json = json.dumps({"x": x.tolist(), "y": y})
    as_binary = wire.encode(x, y)
    values = [as_binary] * batch
    rows = {
        "json.loads": _per_call_us(lambda: json.loads(as_json)),
        "wire.decode (one)": _per_call_us(lambda: wire.decode(as_binary, dim)),
        f"wire.decode_batch (per message of {batch})": _per_call_us(
            lambda: wire.decode_batch(values, dim)) / batch,
    }
    baseline = rows["json.loads"]
    print(f"| decoder ({dim} features) | µs per message | vs json.loads |")
    print("|---|---|---|")
    for name, micros in rows.items():
        print(f"| {name} | {micros:.2f} | {micros / baseline:.2f} |")


def _per_call_us(call, repeat: int = 5) -> float:
    number = 2000
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


if __name__ == "__main__":
    main()
