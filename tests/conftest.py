import sys
import uuid
from pathlib import Path

import pytest


def _flush_by_delete_on_postgresql() -> None:
    """Between transactional tests, PostgreSQL's tables are emptied with DELETE rather than TRUNCATE.

    TRUNCATE gives each of the ~35 tables and their indexes new files: over a second per transactional test on
    2 busy cores, against a tenth of that for DELETE of the few rows a test leaves. Django makes every foreign
    key DEFERRABLE INITIALLY DEFERRED and the flush runs in one transaction, so the order of the DELETEs does
    not matter; no table has a trigger. Resetting sequences or cascading still goes through TRUNCATE.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables]

    DatabaseOperations.sql_flush = sql_flush


_flush_by_delete_on_postgresql()


@pytest.fixture
def side_effects(tmp_path, monkeypatch):
    """Steps of the test flows log each execution here; returns a reader of that log."""
    log = tmp_path / "effects.log"
    monkeypatch.setenv("SIDE_EFFECT_LOG", str(log))
    return lambda: log.read_text().split() if log.exists() else []


@pytest.fixture
def django_default_persistence(monkeypatch):
    """Make DjangoFlowPersistence CrewAI's default persistence for one test, as the engine registry does.

    For the ports of CrewAI's own tests (tests/test_crewai_*.py) whose flows persist through CrewAI's default.
    """
    from crewai.flow.persistence import factory as persistence_factory

    from reviewconsole.engine.persistence import DjangoFlowPersistence

    monkeypatch.setattr(persistence_factory, "_factory", DjangoFlowPersistence)


@pytest.fixture(autouse=True)
def _fast_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _cache_of_its_own(settings):
    """A fresh cache namespace per test, so counters (failed API tokens) never carry over from another test.

    A prefix rather than clearing: with REDIS_URL the cache shares its Redis database with the task queue.
    Failed logins need nothing: django-axes counts them in the database, which each test rolls back.
    """
    settings.CACHES = {
        alias: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"} for alias, config in settings.CACHES.items()
    }


@pytest.fixture(scope="session")
def _documents_root(tmp_path_factory):
    return tmp_path_factory.mktemp("documents")


@pytest.fixture(autouse=True)
def _documents_of_its_own(settings, _documents_root):
    """Uploaded originals and their page images go to a directory of the test's own, never var/documents."""
    location = _documents_root / uuid.uuid4().hex
    documents = {**settings.STORAGES["documents"], "OPTIONS": {"location": str(location)}}
    settings.STORAGES = {**settings.STORAGES, "documents": documents}


# Fixtures through which a test reaches the database (directly, or through a fixture that needs one).
DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}


def pytest_collection_modifyitems(config, items):
    """Marks `dbfree` every test that never reaches the database.

    A dbfree test (statistics, simulations, parsing, settings read under a given environment) runs the same
    on every backend, so the PostgreSQL pass of .ci/run leaves it out (`-m "not dbfree"`). A test that reaches
    no database but still depends on the backend's settings (REDIS_URL…) only needs to ask for `db`.
    """
    for item in items:
        if item.get_closest_marker("django_db") is None and not DATABASE_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.dbfree)


def pytest_sessionfinish(session, exitstatus):
    # Django removes the SQLite test database but not its WAL side files.
    from django.conf import settings

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for suffix in ("-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)


@pytest.fixture
def flow_modules(settings, monkeypatch):
    """Returns `use(*modules)`: load the test flows plus `modules` as FLOW_MODULES, into a registry of this test's
    own (the real one, and the modules already imported, are back after it)."""
    from reviewconsole.engine import registry

    registry.load_flows()  # the real registry holds the usual flows before this test's copy is taken

    def use(*modules: str) -> None:
        settings.FLOW_MODULES = ["flows", "tests.engine_flows", *modules]
        monkeypatch.setattr(registry, "_specs", dict(registry._specs))
        monkeypatch.setattr(registry, "_flows", {})
        monkeypatch.setattr(registry, "_failures", [])
        monkeypatch.setattr(registry, "_loaded", False)
        for module in modules:
            # Imported afresh, so it registers its flows into this test's registry.
            monkeypatch.delitem(sys.modules, module, raising=False)

    return use


@pytest.fixture
def start_cluster(transactional_db, tmp_path, monkeypatch):
    """Returns `start(**env)`: a real qcluster (tests/workers.py) on the test database, its steps logging side
    effects to one file; `start.output()` is every cluster's log. Stops them all after the test.
    """
    from django_q.conf import Conf

    from tests.workers import QCluster, worker_env

    # Tasks go to the broker the clusters read, not inline (pytest-env sets TASKS_SYNC=1).
    monkeypatch.setattr(Conf, "SYNC", False)
    started: list[QCluster] = []

    def start(**env: str) -> QCluster:
        log = tmp_path / f"qcluster-{len(started) + 1}.log"
        cluster = QCluster(worker_env(SIDE_EFFECT_LOG=str(tmp_path / "effects.log"), **env), log)
        started.append(cluster)
        return cluster

    start.output = lambda: "\n".join(cluster.output() for cluster in started)
    # Depending on transactional_db makes this teardown run before the test database is flushed, so no worker
    # holds a connection or writes during it.
    yield start
    for cluster in started:
        cluster.stop()
    # Captured output is only shown when the test fails.
    print(start.output())
