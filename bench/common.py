"""Helpers shared by the benchmark scripts in `bench/`.

- the benchmark database: a fresh SQLite file under /tmp, or a dedicated
  PostgreSQL database, so a benchmark never touches the user's data;
- Django set-up for a script run from the project root;
- a real `manage.py qcluster` subprocess in its own process group;
- percentiles, timing summaries and a plain-text table.

Import this module before Django is set up; it imports nothing from Django or
the project at module level.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DB_NAME = "reviewconsole_bench"

if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

# The settings need a SECRET_KEY; a benchmark signs nothing that outlives it, so any key will do, one per
# run, inherited by the processes it starts.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))


# --------------------------------------------------------------------------- statistics


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    return percentile(values, 50)


@dataclass(frozen=True)
class Summary:
    count: int
    median: float
    p95: float
    mean: float
    minimum: float
    maximum: float


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    return Summary(
        count=len(values),
        median=percentile(values, 50),
        p95=percentile(values, 95),
        mean=sum(values) / len(values),
        minimum=min(values),
        maximum=max(values),
    )


def fmt(value: Any, digits: int = 1) -> str:
    """A number for a table cell: fixed digits, '-' for None/NaN."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, right: bool = True) -> str:
    """A plain-text table: one header line, a rule, the rows; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [row[i].ljust(widths[i]) if i == 0 or not right else row[i].rjust(widths[i]) for i in range(len(row))]
        return "  ".join(parts).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    print(table(headers, rows), flush=True)


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- database


def _postgres_url_for(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def ensure_postgres_database(url: str) -> None:
    """Create the database named in `url` if it does not exist (connecting to `postgres`)."""
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    admin_url = _postgres_url_for(url, "postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def configure_bench_database(directory: Path | str | None = None, *, name: str = BENCH_DB_NAME) -> str:
    """Point DATABASE_URL at a benchmark-only database and return a label for it.

    Unset: a new SQLite file in `directory` (default: a new /tmp directory).
    postgres://…: the same server, database `name` (default `reviewconsole_bench`;
    created if missing). Anything else is used as given. Call before Django reads its settings.
    """
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        directory = directory or tempfile.mkdtemp(prefix="reviewconsole-bench-")
        path = Path(directory) / "bench.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        return f"SQLite {path}"
    scheme = urlsplit(url).scheme
    if scheme.startswith("postgres"):
        return configure_named_postgres_database(name)
    return f"{scheme} (as given)"


def configure_named_postgres_database(name: str) -> str:
    """Point a postgres:// DATABASE_URL at database `name` on the same server (created if missing).

    For benchmarks that need PostgreSQL and keep a large data set between runs in a database of
    their own. Raises ValueError when DATABASE_URL is not a postgres:// URL. Returns a label.
    """
    url = os.environ.get("DATABASE_URL", "")
    if not urlsplit(url).scheme.startswith("postgres"):
        raise ValueError("DATABASE_URL must be a postgres:// URL")
    url = _postgres_url_for(url, name)
    ensure_postgres_database(url)
    os.environ["DATABASE_URL"] = url
    parts = urlsplit(url)
    return f"PostgreSQL {parts.hostname}:{parts.port or 5432}/{name}"


def django_setup(*, migrate: bool = False) -> None:
    """Set up Django for a script run from anywhere; optionally migrate quietly."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewconsole.settings")
    os.chdir(BASE_DIR)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def database_is_sqlite() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith("sqlite")


# --------------------------------------------------------------------------- waiting


def wait_until(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")
        time.sleep(interval)


# --------------------------------------------------------------------------- local services

# What `bench/run_all.py` and `--redis` fall back to on a fresh clone: the local PostgreSQL (trust auth)
# and a Redis database number of its own, so a bench queue never mixes with a deployment's.
LOCAL_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/9"


def broker_env(broker: str, redis_url: str, **overrides: str) -> dict[str, str]:
    """This process's environment for a child that must use `broker` ("orm" or "redis").

    The settings choose the broker from REDIS_URL when they load, so it is set only for "redis".
    """
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    if broker == "redis":
        env["REDIS_URL"] = redis_url
    env.update(overrides)
    return env


# --------------------------------------------------------------------------- child processes

RESULT_PREFIX = "BENCH_RESULT "


def print_result(result: Any) -> None:
    """A child's result for `run_result_child`: one JSON line on stdout."""
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)


def run_result_child(cmd: Sequence[str], env: dict[str, str]) -> Any:
    """Run a bench child process from the project root and return the result it printed.

    Its stderr (progress) passes through; RuntimeError with its stdout when it printed no result.
    """
    completed = subprocess.run(list(cmd), cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True, check=False)
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"{' '.join(cmd[1:])} failed (exit {completed.returncode}):\n{completed.stdout}")


# --------------------------------------------------------------------------- qcluster


def cluster_env(**overrides: str) -> dict[str, str]:
    """This process's environment for a worker: real (async) tasks.

    The queue is the settings' one (django-q2 1.11 cannot take Q_CLUSTER_NAME
    without ALT_CLUSTERS in Q_CLUSTER), so with the ORM broker it lives in the
    bench database, but a REDIS_URL shared with a running deployment would
    share its queue: give benchmarks their own Redis database number.
    """
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "reviewconsole.settings"),
            "TASKS_SYNC": "0",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
        }
    )
    env.update(overrides)
    return env


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux /proc)."""
    found = [pid]
    for child in _children(pid):
        found.extend(process_tree(child))
    return found


def process_name(pid: int) -> str:
    """The process's command line."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class QCluster:
    """A `manage.py qcluster` process group started from the project root; output to `log_path`.

    Use as a context manager, or call `stop()` in a `finally`: the whole group
    (cluster, sentinel, pusher, workers, monitor) is terminated, then killed.
    """

    def __init__(self, env: dict[str, str], log_path: Path | str, args: Sequence[str] = ()) -> None:
        self.log_path = Path(log_path)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster", *args],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pgid = self.process.pid

    def __enter__(self) -> QCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return process_tree(self.pid)

    def output(self, tail: int = 4000) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-tail:]

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group, SIGKILL what is left after `grace` seconds, reap the leader."""
        try:
            if group_alive(self.pgid):
                self._signal(signal.SIGTERM)
                if not self._wait_gone(grace):
                    self._signal(signal.SIGKILL)
                    self._wait_gone(10)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        finally:
            self._log.close()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signum)

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.process.poll()
            if not group_alive(self.pgid):
                return True
            time.sleep(0.05)
        return False
