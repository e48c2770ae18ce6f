"""Chunk codec: lossless for any float64 and any ascending timestamps; compact for real data."""

import numpy as np
import pytest

from analytics.store.codec import decode_timestamps, decode_values, encode_timestamps, encode_values


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).normal(size=1440),  # noise: stored raw
        np.round(np.random.default_rng(2).uniform(0, 100, 1440), 1),  # few digits: shuffled + zlib
        np.zeros(1440),
        np.array([1.5]),
        np.array([-0.0, 5e-324, 1.7976931348623157e308, -1e-300, 3.0]),
    ],
    ids=["noise", "one-decimal", "zeros", "single", "extremes"],
)
def test_values_round_trip_bit_for_bit(values):
    decoded = decode_values(encode_values(values))
    assert decoded.dtype == np.float64
    assert decoded.tobytes() == values.astype("<f8").tobytes()


def test_timestamps_round_trip_and_regular_series_shrink_to_a_few_bytes():
    regular = 1_767_225_600_000_000 + np.arange(1440, dtype=np.int64) * 60_000_000
    irregular = np.cumsum(np.random.default_rng(3).integers(1, 10**8, 1000)) + 10**15
    for ts in (regular, irregular, regular[:1]):
        assert np.array_equal(decode_timestamps(encode_timestamps(ts)), ts)
    assert len(encode_timestamps(regular)) < 60


def test_compressible_values_are_smaller_than_raw():
    values = np.round(np.random.default_rng(4).normal(40, 5, 1440), 1)
    assert len(encode_values(values)) < 0.8 * values.nbytes


def test_unknown_formats_are_refused():
    with pytest.raises(ValueError, match="unknown format"):
        decode_values(b"\x09abc")
    with pytest.raises(ValueError, match="unknown format"):
        decode_timestamps(b"\x09abc")
