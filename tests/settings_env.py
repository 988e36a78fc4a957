"""The settings module's values under a given environment, for tests of what the environment switches."""

from __future__ import annotations

import runpy

import pytest
from django.conf import settings

SETTINGS_FILE = settings.BASE_DIR / "reviewconsole" / "settings.py"
# Unset unless a test sets them, so the values do not depend on the shell the tests run in.
VARIABLES = (
    "SECRET_KEY",
    "DEBUG",
    "PUBLIC_URL",
    "SECURE_HSTS_SECONDS",
    "TRUST_X_FORWARDED_PROTO",
    "REDIS_URL",
    "DATABASE_URL",
    "CONN_MAX_AGE",
    "DB_POOL_MIN_SIZE",
    "DB_POOL_MAX_SIZE",
    "DB_POOL_TIMEOUT",
    "ALLOWED_HOSTS",
    "STATIC_MANIFEST",
    "METRICS_TOKEN",
    "METRICS_WINDOW_SECONDS",
    "WORKER_HEARTBEAT_SECONDS",
    "LOG_FORMAT",
    "BIND",
    "WEB_CONCURRENCY",
    "WORKERS",
    "UNDO_SECONDS",
    "RETENTION_DAYS",
)


def settings_under(monkeypatch: pytest.MonkeyPatch, **environ: str) -> dict:
    """Run the settings module with exactly these of its variables set; the running settings are untouched."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))
