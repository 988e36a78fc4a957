"""Real `manage.py qcluster` processes for tests in which a worker has to die.

Each cluster runs in its own session, so its process group holds the cluster
process and every worker it forks, and a test can SIGKILL all of them at once
the way an OOM kill or a lost machine would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent
# What a cluster logs (at INFO, see worker_env) when its sentinel and workers are gone after a SIGTERM.
STOPPED = "has stopped."


def worker_database_url() -> str:
    """A DATABASE_URL for the database this test session uses (the test one, not the dev one)."""
    config = connection.settings_dict
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # settings give SQLite tests a file, so another process can open it.
        return f"sqlite:///{config['NAME']}"
    if config["ENGINE"] == "django.db.backends.postgresql":
        user = quote(config.get("USER") or "")
        password = f":{quote(config['PASSWORD'])}" if config.get("PASSWORD") else ""
        host = config.get("HOST") or "127.0.0.1"
        port = config.get("PORT") or 5432
        return f"postgres://{user}{password}@{host}:{port}/{config['NAME']}"
    raise NotImplementedError(f"no worker DATABASE_URL for {config['ENGINE']}")


def worker_env(**overrides: str) -> dict[str, str]:
    """The test process's environment, pointed at the test database, with real (async) tasks."""
    env = dict(os.environ)
    # pytest-env sets these for inline tasks and a long lease; a worker needs the opposite.
    env.update(
        {
            "TASKS_SYNC": "0",
            "Q_WORKERS": "1",
            "RUN_LEASE_SECONDS": "3",
            "FLOW_MODULES": "flows,tests.engine_flows,tests.agent_flows,tests.conformance",
            "DATABASE_URL": worker_database_url(),
            "LOG_LEVEL": "INFO",
            # Output must reach the log file before a SIGKILL can lose it.
            "PYTHONUNBUFFERED": "1",
        }
    )
    # REDIS_URL is inherited unchanged: the test process enqueues into the same broker.
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(overrides)
    return env


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, details: Callable[[], str] = str) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{details()}")
        time.sleep(0.2)


def _state_and_group(stat: Path) -> tuple[str, int] | None:
    """A process's state letter and process group from its /proc stat file; None once it has exited."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # the process exited while we looked
    return fields[0], int(fields[2])


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies awaiting their reaper do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        found = _state_and_group(stat)
        if found and found[1] == pgid and found[0] != "Z":
            return True
    return False


class QCluster:
    """One `manage.py qcluster` process group, its output captured in `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # A new session makes the cluster process the leader of a new group.
        self.pgid = self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash would, and wait until none of it runs."""
        self._signal(signal.SIGKILL)
        self._wait_gone(timeout=10)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM; SIGKILL whatever still runs once the cluster has stopped, or after `grace` seconds."""
        if self.alive():
            # The cluster process stops its own workers on SIGTERM; signalling
            # the whole group would kill them under it and stall its shutdown.
            self.process.send_signal(signal.SIGTERM)
            # Once it logs that it has stopped (its workers have exited), all that is left is the interpreter's
            # exit, seconds of garbage collection with CrewAI loaded: not worth waiting for.
            deadline = time.monotonic() + grace
            while self.alive() and time.monotonic() < deadline and STOPPED not in self.output():
                time.sleep(0.05)
            if self.alive():
                self._signal(signal.SIGKILL)
                # No raise here: teardown must go on to stop the other clusters.
                self._wait_gone(timeout=10, fail=False)
        self._reap()
        self._log.close()

    def alive(self) -> bool:
        return group_alive(self.pgid)

    def holds(self, pid: int) -> bool:
        """Whether process `pid` (a worker, as a run's `worker` names it) belongs to this cluster."""
        found = _state_and_group(Path(f"/proc/{pid}/stat"))
        return bool(found) and found[1] == self.pgid

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the whole group is already gone
            os.killpg(self.pgid, signum)

    def _reap(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def _wait_gone(self, *, timeout: float, fail: bool = True) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # The leader is our child: reap it, or it stays a zombie in the group.
            self.process.poll()
            if not self.alive():
                return True
            time.sleep(0.05)
        if fail:
            raise AssertionError(f"qcluster group {self.pgid} still running after {timeout}s")
        return False
