"""Typed readers of environment variables that fail loudly on a bad value."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class ConfigError(ValueError):
    pass


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}: expected a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be >= {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86_400, "day": 86_400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"6000/min"`` → (6000, 60). Raises ValueError on anything else."""
    count, _, period = rate.strip().partition("/")
    seconds = PERIODS.get(period.strip().lower())
    if seconds is None or not count.strip().isdigit() or int(count) < 1:
        raise ValueError(f"expected '<count>/<sec|min|hour|day>', got {rate!r}")
    return int(count), seconds


def env_rate(name: str, default: str) -> str:
    """A rate such as ``"6000/min"`` (``config.throttling``), checked at start-up."""
    raw = os.environ.get(name) or default
    try:
        parse_rate(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return raw


def generated_secret_key(path: Path) -> str:
    """The key stored at ``path``, generated on first use (readable by its owner only).
    Written to a file of its own and then linked into place, which fails if the key
    exists: two processes starting together end up with the first one's whole key."""
    if not path.exists():
        draft = path.with_name(f"{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(64))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
