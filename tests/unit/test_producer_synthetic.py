import numpy as np
import pytest

from producer.synthetic import CHUNK, SyntheticStream
from producer.truth import read_truth, weights_at, write_truth


def _concat(blocks):
    return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])


@pytest.mark.parametrize("drift", ["none", "abrupt", "gradual"])
def test_synthetic_block_sizes_differ_same_bits(drift):
    whole = SyntheticStream(7, seed=3, drift=drift, drift_at=1500).next_block(3 * CHUNK + 5)
    stream = SyntheticStream(7, seed=3, drift=drift, drift_at=1500)
    pieces = _concat([stream.next_block(n) for n in (1, 2, CHUNK - 3, CHUNK + 1, CHUNK + 4)])
    assert whole[0].tobytes() == pieces[0].tobytes()
    assert whole[1].tobytes() == pieces[1].tobytes()


def test_synthetic_random_access_matches_sequential_read():
    sequential = SyntheticStream(4, seed=1, drift="gradual").next_block(3000)
    X, y = SyntheticStream(4, seed=1, drift="gradual").block(2000, 500)
    assert X.tobytes() == sequential[0][2000:2500].tobytes()
    assert y.tobytes() == sequential[1][2000:2500].tobytes()


def test_synthetic_other_seed_other_samples():
    a = SyntheticStream(3, seed=1).next_block(10)
    b = SyntheticStream(3, seed=2).next_block(10)
    assert not np.array_equal(a[0], b[0])


@pytest.mark.parametrize("drift", ["none", "abrupt", "gradual"])
def test_synthetic_targets_follow_truth_up_to_noise(drift):
    stream = SyntheticStream(5, seed=4, noise=0.01, drift=drift, drift_at=700, truth_every=50)
    X, y = stream.next_block(2000)
    truth = stream.truth(samples=2000)
    residuals = []
    for i in range(2000):
        w, b = weights_at(truth, i)
        residuals.append(y[i] - (X[i] @ w + b))
    assert np.std(residuals) == pytest.approx(0.01, rel=0.1)
    assert abs(np.mean(residuals)) < 0.002


def test_synthetic_abrupt_changes_weights_exactly_at_drift_point():
    stream = SyntheticStream(3, seed=0, drift="abrupt", drift_at=123, drift_scale=2.0)
    truth = stream.truth(samples=200)
    assert [s["from"] for s in truth["segments"]] == [0, 123]
    assert weights_at(truth, 122)[0].tolist() == truth["segments"][0]["weights"]
    assert weights_at(truth, 123)[0].tolist() == truth["segments"][1]["weights"]
    assert weights_at(truth, 122)[0].tolist() != weights_at(truth, 123)[0].tolist()


def test_synthetic_gradual_has_segment_every_truth_every():
    stream = SyntheticStream(2, seed=0, drift="gradual", truth_every=100)
    stream.next_block(1050)
    truth = stream.truth(samples=1050)
    assert [s["from"] for s in truth["segments"]] == list(range(0, 1100, 100))


def test_synthetic_gradual_walk_speed_scales_with_drift_scale():
    stream = SyntheticStream(50, seed=0, drift="gradual", drift_scale=0.5, truth_every=100)
    segments = stream.segments(10_001)
    change = segments[-1].weights - segments[0].weights
    assert np.std(change) == pytest.approx(0.5, rel=0.3)


def test_synthetic_no_drift_keeps_one_segment():
    truth = SyntheticStream(3, seed=0).truth(samples=5000)
    assert len(truth["segments"]) == 1
    assert truth["drift"] == "none" and truth["dim"] == 3


def test_synthetic_uniform_features_stay_in_unit_variance_bounds():
    X, _ = SyntheticStream(4, seed=0, distribution="uniform").next_block(5000)
    assert np.abs(X).max() <= np.sqrt(3)
    assert np.var(X) == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dim": 0}, "dim must be >= 1"),
        ({"noise": -1.0}, "noise must be"),
        ({"drift": "sideways"}, "drift must be"),
        ({"distribution": "cauchy"}, "distribution must be"),
    ],
)
def test_synthetic_bad_parameter_raises_naming_it(kwargs, message):
    params = {"dim": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        SyntheticStream(**params)


def test_truth_written_file_reads_back_exact_weights(tmp_path):
    stream = SyntheticStream(3, seed=9, drift="abrupt", drift_at=10)
    path = tmp_path / "truth.json"
    write_truth(path, stream.truth(samples=20))
    truth = read_truth(path)
    assert truth["segments"][1]["weights"] == stream.segments(20)[1].weights.tolist()
    assert truth["samples"] == 20 and truth["drift_at"] == 10


def test_truth_weights_at_negative_index_raises():
    truth = SyntheticStream(3).truth(samples=1)
    with pytest.raises(ValueError, match="got -1"):
        weights_at(truth, -1)
