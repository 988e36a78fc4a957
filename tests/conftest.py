from pathlib import Path

import pytest


@pytest.fixture
def side_effects(tmp_path, monkeypatch):
    """Steps of the test flows log each execution here; returns a reader of that log."""
    log = tmp_path / "effects.log"
    monkeypatch.setenv("SIDE_EFFECT_LOG", str(log))
    return lambda: log.read_text().split() if log.exists() else []


@pytest.fixture(autouse=True)
def _fast_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_sessionfinish(session, exitstatus):
    # Django removes the SQLite test database but not its WAL side files.
    from django.conf import settings

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for suffix in ("-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)
