"""Database connections: a web server and its workers hold a bounded number, whatever the traffic."""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import sys
import uuid
from multiprocessing.connection import Connection
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.people import user_with_engine_perms
from tests.settings_env import settings_under
from tests.workers import BASE_DIR, wait_for, worker_env

on_postgresql = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="connection limits and pooling are PostgreSQL's; SQLite has no server to run out of connections",
)

REQUESTS = 1000
# libpq reads the application name from the environment: it tells the server's connections from the test's.
SERVER_APPLICATION_NAME = "review-console-connection-test"


# --- settings --------------------------------------------------------------------------------------------


def test_postgresql_gets_a_pool_sized_by_the_environment(monkeypatch):
    url = "postgres://postgres@127.0.0.1:5432/rc"
    pooled = settings_under(monkeypatch, SECRET_KEY="k", DATABASE_URL=url, DB_POOL_MAX_SIZE="7", CONN_MAX_AGE="60")
    database = pooled["DATABASES"]["default"]
    assert database["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 7, "timeout": 30.0}
    # The pool hands connections out per request or task; Django refuses persistent ones with it.
    assert database["CONN_MAX_AGE"] == 0


def test_without_a_pool_connections_close_after_each_request_unless_told_otherwise(monkeypatch):
    url = "postgres://postgres@127.0.0.1:5432/rc"
    unpooled = settings_under(monkeypatch, SECRET_KEY="k", DATABASE_URL=url, DB_POOL_MAX_SIZE="0")["DATABASES"]
    assert "pool" not in unpooled["default"].get("OPTIONS", {})
    assert unpooled["default"]["CONN_MAX_AGE"] == 0
    # SQLite keeps its connection (a file handle, no server slot) so that workers do not reopen it per task.
    sqlite = settings_under(monkeypatch, SECRET_KEY="k")["DATABASES"]["default"]
    assert sqlite["CONN_MAX_AGE"] == 60 and "pool" not in sqlite["OPTIONS"]
    persistent = settings_under(monkeypatch, SECRET_KEY="k", DATABASE_URL=url, DB_POOL_MAX_SIZE="0", CONN_MAX_AGE="60")
    assert persistent["DATABASES"]["default"]["CONN_MAX_AGE"] == 60


# --- a real threaded server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [SERVER_APPLICATION_NAME],
        )
        return cursor.fetchone()[0]


def _answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=2):
            return True
    except URLError as error:
        return not isinstance(error.reason, ConnectionRefusedError)


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_threaded_server_holds_no_more_connections_than_its_pool_over_1000_requests(tmp_path):
    pool_size = settings.DATABASES["default"].get("OPTIONS", {}).get("pool", {}).get("max_size", 0)
    browser = Client()
    browser.force_login(user_with_engine_perms("olga", "view_flowrun"))
    session_cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    base = f"http://127.0.0.1:{_free_port()}"
    # The server's own defaults: nothing the test session sets about connections.
    env = worker_env(PGAPPNAME=SERVER_APPLICATION_NAME)
    for name in ("CONN_MAX_AGE", "DB_POOL_MIN_SIZE", "DB_POOL_MAX_SIZE", "DB_POOL_TIMEOUT"):
        env.pop(name, None)
    log_path = tmp_path / "runserver.log"
    with log_path.open("wb") as log:
        # runserver serves every request in a thread of its own: the case where connections leaked.
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", base.removeprefix("http://"), "--noreload", "--skip-checks"],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: _answers(f"{base}/accounts/login/"), timeout=60, what="runserver", details=log_path.read_text
            )
            # An API read with the browser's session (the run does not exist, which keeps it cheap): one request
            # cycle that used to leave its connection open.
            request = Request(f"{base}/api/v1/runs/{uuid.uuid4()}", headers={"Cookie": session_cookie})
            for sent in range(1, REQUESTS + 1):
                # A new TCP connection each time, so each request gets a new server thread.
                with pytest.raises(HTTPError) as answer:
                    urlopen(request, timeout=30)
                assert answer.value.code == 404, answer.value.read()
                if sent % 100 == 0:
                    # Checked as it goes, so a leak fails the test before it exhausts the server's connections.
                    open_connections = _server_connections()
                    assert 0 < open_connections <= pool_size, (
                        f"{open_connections} connections open after {sent} requests; the pool allows {pool_size}"
                    )
        finally:
            server.terminate()
            server.wait(timeout=10)


# --- forked workers ---------------------------------------------------------------------------------------


def _report_backend_pid(send: Connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        send.send(cursor.fetchone()[0])
    connection.close()


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_forked_worker_opens_its_own_connections_rather_than_the_parents_pooled_ones():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        parents_connections = {pid for (pid,) in cursor.fetchall()}
    # Back to the pool, idle: what a django-q2 cluster does before it forks a worker.
    connection.close()

    fork = multiprocessing.get_context("fork")
    receive, send = fork.Pipe(duplex=False)
    child = fork.Process(target=_report_backend_pid, args=(send,))
    child.start()
    assert receive.poll(30), "the forked process reported no connection"
    child_backend = receive.recv()
    child.join(timeout=10)

    # Taking one of the parent's would mean two processes talking on one socket.
    assert child_backend not in parents_connections
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
