"""analytics.core.formatting: how every sentence writes numbers, units, sigmas, moments and durations."""

from datetime import UTC, datetime, timedelta

import pytest

from analytics.core.formatting import format_duration, format_lag, format_moment, format_sigma, format_time, format_value


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (97.34, "%", "97.3%"),
        (250.0, "ms", "250 ms"),
        (1234.0, "ms", "1.2 s"),
        (512.0, "bytes", "512 B"),
        (1.5 * 1024**3, "bytes", "1.5 GiB"),
        (-2048.0, "bytes", "-2.0 KiB"),
        (850.0, "bytes/s", "850 B/s"),
        (12_500.0, "bytes/s", "12.5 KB/s"),
        (123_456_789.0, "bytes/s", "123.5 MB/s"),
        (2.5e9, "B/s", "2.5 GB/s"),
        (12345.0, "", "12,345"),
        (0.0421, "", "0.042"),
        (3.0, "req/s", "3.0 req/s"),
        (42.5, "ops/s", "42.5 ops/s"),
    ],
)
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text


@pytest.mark.parametrize(
    ("sigma", "text"),
    [(4.26, "+4.3σ"), (-6.04, "-6.0σ"), (30.2, "+30σ"), (50.0, "+50σ"), (594.3, "beyond +50σ"), (-75.0, "beyond -50σ")],
)
def test_format_sigma_caps_what_a_reader_cannot_use(sigma, text):
    assert format_sigma(sigma) == text


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=45), "45 s"),
        (timedelta(minutes=3), "3 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(minutes=90), "1.5 h"),
        (timedelta(days=3), "3 d"),
    ],
)
def test_format_duration(delta, text):
    assert format_duration(delta) == text


def test_format_lag_is_to_the_minute():
    assert [format_lag(s) for s in (40, 60, 720, 3600, 3900, -720)] == ["40 s", "1 min", "12 min", "1 h", "1 h 5 min", "12 min"]


def test_moments_carry_the_date_times_of_day_do_not():
    moment = datetime(2026, 11, 27, 6, 50, tzinfo=UTC)
    assert format_moment(moment) == "2026-11-27 06:50 UTC"
    assert format_moment(moment.replace(second=9)) == "2026-11-27 06:50:09 UTC"
    assert format_time(moment) == "06:50 UTC"
