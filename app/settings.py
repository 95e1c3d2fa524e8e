"""Server settings from the environment, validated before anything starts."""

import re
from collections.abc import Mapping
from dataclasses import dataclass

VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")
LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """An environment variable has an invalid value; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    version: str = "dev"
    workers: int = 2
    drain_seconds: float = 5.0
    # The preStop hook GET /prestop (app/quiescence.py).
    prestop_min_seconds: float = 5.0
    prestop_quiet_seconds: float = 2.0
    prestop_max_seconds: float = 90.0
    prestop_min_service_seconds: float = 30.0
    graceful_timeout: int = 20
    keepalive: int = 75
    log_level: str = "info"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Settings":
        defaults = cls()
        settings = cls(
            host=_text(environ, "HOST", defaults.host),
            port=_integer(environ, "PORT", defaults.port, minimum=1, maximum=65535),
            version=_version(environ, "APP_VERSION", defaults.version),
            workers=_integer(environ, "WEB_CONCURRENCY", defaults.workers, minimum=1, maximum=64),
            drain_seconds=_seconds(environ, "DRAIN_SECONDS", defaults.drain_seconds),
            prestop_min_seconds=_seconds(
                environ, "PRESTOP_MIN_SECONDS", defaults.prestop_min_seconds
            ),
            prestop_quiet_seconds=_seconds(
                environ, "PRESTOP_QUIET_SECONDS", defaults.prestop_quiet_seconds
            ),
            prestop_max_seconds=_seconds(
                environ, "PRESTOP_MAX_SECONDS", defaults.prestop_max_seconds
            ),
            prestop_min_service_seconds=_seconds(
                environ, "PRESTOP_MIN_SERVICE_SECONDS", defaults.prestop_min_service_seconds
            ),
            graceful_timeout=_integer(
                environ, "GRACEFUL_TIMEOUT", defaults.graceful_timeout, minimum=0, maximum=3600
            ),
            keepalive=_integer(
                environ, "KEEPALIVE_SECONDS", defaults.keepalive, minimum=1, maximum=3600
            ),
            log_level=_choice(environ, "LOG_LEVEL", defaults.log_level, LOG_LEVELS),
        )
        for name, value in [
            ("PRESTOP_MIN_SECONDS", settings.prestop_min_seconds),
            ("PRESTOP_QUIET_SECONDS", settings.prestop_quiet_seconds),
        ]:
            if value > settings.prestop_max_seconds:
                raise SettingsError(
                    f"{name} must not exceed PRESTOP_MAX_SECONDS"
                    f" ({settings.prestop_max_seconds:g}), got {value:g}"
                )
        return settings


def _raw(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def _text(environ, name, default):
    return _raw(environ, name) or default


def _integer(environ, name, default, *, minimum, maximum):
    raw = _raw(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _seconds(environ, name, default):
    raw = _raw(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 <= value <= 3600:
        raise SettingsError(f"{name} must be between 0 and 3600 seconds, got {raw}")
    return value


def _version(environ, name, default):
    raw = _raw(environ, name)
    if raw is None:
        return default
    if not VERSION_PATTERN.fullmatch(raw):
        raise SettingsError(
            f"{name} must be 1-128 characters of letters, digits and _.+- , got {raw!r}"
        )
    return raw


def _choice(environ, name, default, choices):
    raw = _raw(environ, name)
    if raw is None:
        return default
    if raw.lower() not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw.lower()
