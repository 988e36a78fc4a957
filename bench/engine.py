"""Engine overhead: a zero-latency flow through the whole console against CrewAI's own kickoff.

    .venv/bin/python bench/engine.py [--quick] [--runs N] [--profile]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python bench/engine.py --quick

Baseline (in this process): CrewAI kicks off the 4-method flow of
`bench/flows_engine.py` with `@persist(SQLiteFlowPersistence(<tmp file>))`,
warm, N times in a row: per-flow time median/p95 and baseline cost = wall / N.
The file is on tmpfs (/dev/shm) unless --baseline-dir says otherwise; info rows
show the same kickoff with the file on disk and with no persistence.

Full stack, once per broker (the ORM broker, and Redis when REDIS_URL is set):
`services.run_create("bench_zero")` with real (async) tasks → broker → a real
`manage.py qcluster` subprocess → claim, checkpoints, step events → completed.
After warm-up runs (worker start-up and the CrewAI import excluded), N runs are
submitted at once; per-run latency is created_at → finished_at from the
database, and full-stack cost = wall time until the last finished / N. The
settings choose the broker when they load, so each broker is measured in a
child process of this script.

The database is never the user's: a fresh SQLite file under /tmp, or with a
postgres:// DATABASE_URL the database `reviewconsole_bench` on that server.

--profile adds, after the measurement: the worker's code path in this process
(wall time per building block; DB statements, commits and connections per run)
and py-spy samples of the qcluster tree during one more batch (CPU per process
role and per part of the worker; needs `.venv/bin/pip install py-spy`;
BENCH_PY_SPY_ARGS passes extra py-spy options). A DJANGO_SETTINGS_MODULE that
star-imports reviewconsole.settings and overrides something measures a settings
change without editing the settings.

The last line printed is `engine_overhead_ratio=<full-stack cost / baseline cost>`
for the default broker (Redis when REDIS_URL is set, else the ORM broker).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BASE_DIR,
    QCluster,
    cluster_env,
    configure_bench_database,
    django_setup,
    fmt,
    log,
    print_table,
    summarize,
    wait_until,
)

FLOW_NAME = "bench_zero"
FLOW_MODULES = "flows,bench.flows_engine"
INPUTS = {"label": "bench", "amount": 10.0}
EXPECTED_RESULT = {"label": "bench", "doubled": 20.0, "route": "small"}
RESULT_PREFIX = "BENCH_RESULT "


# --------------------------------------------------------------------------- set-up


def prepare_environment(workdir: Path) -> str:
    """Environment every bench process needs before Django loads its settings."""
    # An explicit DJANGO_SETTINGS_MODULE (one that star-imports reviewconsole.settings
    # and overrides a setting) lets a settings change be measured without editing.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewconsole.settings")
    os.environ["TASKS_SYNC"] = "0"
    os.environ["FLOW_MODULES"] = FLOW_MODULES
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return configure_bench_database(workdir)


# The bench process keeps REDIS_URL to itself: crewai_core.lock_store reads it at import
# and then makes CrewAI's SQLiteFlowPersistence take a Redis lock (portalocker.RedisLock)
# around every save_state, which costs ~0.1 s each and is not the baseline we want.
# Only the Redis phase's child process and its qcluster get it back.
REDIS_URL = os.environ.get("REDIS_URL", "")


def default_broker() -> str:
    return "redis" if REDIS_URL else "orm"


# --------------------------------------------------------------------------- baseline


def default_baseline_dir() -> str:
    """tmpfs when there is one: CrewAI's SQLite persistence fsyncs every save_state, and on
    a shared VM disk that alone swung the baseline between ~14 and ~85 ms per flow (an
    info row still shows the on-disk figure)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else tempfile.gettempdir()


def _kickoff_figures(times: list[float], wall: float) -> dict[str, Any]:
    stats = summarize(times)
    return {
        "runs": len(times),
        "wall_s": wall,
        "cost_ms": wall / len(times) * 1000,
        "throughput": len(times) / wall,
        "latency_p50_ms": stats.median * 1000,
        "latency_p95_ms": stats.p95 * 1000,
        "times": times,
    }


class Baseline:
    """CrewAI alone, in this process: warm kickoffs of the bench flow, with and without persistence."""

    def __init__(self, baseline_dir: Path, workdir: Path, warmup: int = 5) -> None:
        from crewai.flow.persistence import SQLiteFlowPersistence, persist

        from reviewconsole.engine.registry import load_flows

        # The persistence factory must be registered before bench.flows_engine's
        # `@persist()` runs, or it would create CrewAI's default SQLite file.
        load_flows()
        from bench.flows_engine import zero_flow_class

        self.warmup = warmup
        self.dirs = {"sqlite": baseline_dir, "disk": workdir}
        self._files: list[Path] = []
        self.classes: dict[str, type] = {"bare": zero_flow_class()}
        for kind, directory in self.dirs.items():
            handle, path = tempfile.mkstemp(prefix="crewai-flow-states-", suffix=".db", dir=directory)
            os.close(handle)
            Path(path).unlink()
            self._files.append(Path(path))
            self.classes[kind] = persist(SQLiteFlowPersistence(path))(zero_flow_class())

    def measure(self, kind: str, count: int) -> dict[str, Any]:
        flow_class = self.classes[kind]
        for _ in range(self.warmup):
            flow_class().kickoff(inputs=dict(INPUTS))
        times = []
        started = time.perf_counter()
        for _ in range(count):
            t0 = time.perf_counter()
            result = flow_class().kickoff(inputs=dict(INPUTS))
            times.append(time.perf_counter() - t0)
            if result != EXPECTED_RESULT:
                raise RuntimeError(f"baseline flow returned {result!r}, expected {EXPECTED_RESULT!r}")
        figures = _kickoff_figures(times, time.perf_counter() - started)
        if kind in self.dirs:
            figures["dir"] = str(self.dirs[kind])
        return figures

    def close(self) -> None:
        for path in self._files:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


def pooled(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """One figure from the baseline measured before and after the full stack (load drifts)."""
    return _kickoff_figures(first["times"] + second["times"], first["wall_s"] + second["wall_s"]) | {
        "dir": first.get("dir"),
        "before_ms": first["cost_ms"],
        "after_ms": second["cost_ms"],
    }


# --------------------------------------------------------------------------- full stack (child process)


def _finished_statuses() -> list[str]:
    from reviewconsole.engine.models import FINISHED_RUN_STATUSES

    return [str(s) for s in FINISHED_RUN_STATUSES]


def _submit(count: int) -> list[Any]:
    from reviewconsole.engine import services

    return [services.run_create(flow_name=FLOW_NAME, inputs=dict(INPUTS), trigger="bench").id for _ in range(count)]


def _wait_finished(ids: list[Any], *, timeout: float, interval: float, cluster: QCluster) -> None:
    from reviewconsole.engine.models import FlowRun

    finished = _finished_statuses()

    def done() -> bool:
        if not cluster.running():
            raise RuntimeError(f"qcluster exited early:\n{cluster.output()}")
        return FlowRun.objects.filter(id__in=ids, status__in=finished).count() == len(ids)

    try:
        wait_until(done, timeout=timeout, interval=interval, what=f"{len(ids)} runs to finish")
    except TimeoutError:
        log(f"qcluster output:\n{cluster.output()}")
        raise


def _runs(ids: list[Any]) -> list[Any]:
    from reviewconsole.engine.models import FlowRun, RunStatus

    runs = list(FlowRun.objects.filter(id__in=ids))
    bad = [run for run in runs if run.status != RunStatus.COMPLETED or run.result != EXPECTED_RESULT]
    if bad:
        run = bad[0]
        raise RuntimeError(
            f"{len(bad)} of {len(ids)} runs did not complete as expected; e.g. {run.id}: {run.status} "
            f"result={run.result!r} error={run.error}\n{run.traceback}"
        )
    return runs


def _rows_per_run(ids: list[Any]) -> dict[str, float]:
    from reviewconsole.engine.models import Checkpoint, RunTransition, Step

    n = len(ids)
    return {
        "checkpoints": Checkpoint.objects.filter(flow_uuid__in=[str(i) for i in ids]).count() / n,
        "steps": Step.objects.filter(run_id__in=ids).count() / n,
        "transitions": RunTransition.objects.filter(run_id__in=ids).count() / n,
    }


def _purge_bench_queue(broker: str) -> None:
    """Drop tasks a killed earlier bench left queued in the bench database (ORM broker only).

    A Redis queue may be shared with a deployment, so it is never purged; stale
    bench tasks there find their runs finished and return at once.
    """
    if broker == "orm":
        from django_q.brokers import get_broker

        get_broker().purge_queue()


def full_stack_phase(args: argparse.Namespace) -> dict[str, Any]:
    """Run in a child process whose settings use `args.phase` as the broker."""
    from django.utils import timezone

    _purge_bench_queue(args.phase)
    workdir = Path(args.workdir)
    env = cluster_env(
        Q_WORKERS=str(args.workers),
        Q_POLL_SECONDS=str(args.poll),
        FLOW_MODULES=FLOW_MODULES,
    )
    cluster = QCluster(env, workdir / f"qcluster-{args.phase}.log")
    profile: dict[str, Any] | None = None
    try:
        log(f"[{args.phase}] qcluster pid {cluster.pid}; {args.warmup} warm-up runs")
        started = time.monotonic()
        warm_ids = _submit(args.warmup)
        _wait_finished(warm_ids, timeout=240, interval=0.1, cluster=cluster)
        _runs(warm_ids)
        log(f"[{args.phase}] warm after {time.monotonic() - started:.1f}s; {args.solo} runs one at a time")

        solo = []
        for _ in range(args.solo):
            (run_id,) = _submit(1)
            _wait_finished([run_id], timeout=60, interval=0.005, cluster=cluster)
            (run,) = _runs([run_id])
            solo.append((run.finished_at - run.created_at).total_seconds())

        log(f"[{args.phase}] {args.runs} runs submitted at once")
        t0 = timezone.now()
        ids = _submit(args.runs)
        submitted = (timezone.now() - t0).total_seconds()
        _wait_finished(ids, timeout=max(120.0, args.runs * 2.0), interval=0.05, cluster=cluster)
        runs = _runs(ids)
        wall = (max(run.finished_at for run in runs) - t0).total_seconds()
        latency = summarize([(run.finished_at - run.created_at).total_seconds() for run in runs])
        execution = summarize([(run.finished_at - run.started_at).total_seconds() for run in runs])
        pickup = summarize([(run.started_at - run.created_at).total_seconds() for run in runs])
        workers = sorted({run.worker for run in runs})

        if args.profile:
            profile = profile_batch(args, cluster, workdir)
    finally:
        cluster.stop()
    solo_stats = summarize(solo)
    return {
        "broker": args.phase,
        "runs": args.runs,
        "workers": args.workers,
        "poll_s": args.poll,
        "submit_s": submitted,
        "wall_s": wall,
        "cost_ms": wall / args.runs * 1000,
        "throughput": args.runs / wall,
        "latency_p50_ms": latency.median * 1000,
        "latency_p95_ms": latency.p95 * 1000,
        "exec_p50_ms": execution.median * 1000,
        "exec_p95_ms": execution.p95 * 1000,
        "pickup_p50_ms": pickup.median * 1000,
        "solo_p50_ms": solo_stats.median * 1000,
        "solo_p95_ms": solo_stats.p95 * 1000,
        "rows_per_run": _rows_per_run(ids),
        "worker_processes": len(workers),
        "profile": profile,
    }


# --------------------------------------------------------------------------- profile (optional)


def profile_batch(args: argparse.Namespace, cluster: QCluster, workdir: Path) -> dict[str, Any]:
    """Sample the whole qcluster process tree with py-spy while one more batch runs."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        return {"error": f"py-spy is not installed ({Path(sys.executable).parent}/pip install py-spy)"}
    raw = workdir / f"profile-{args.phase}.txt"
    svg = workdir / f"profile-{args.phase}.svg"
    cmd = [str(py_spy), "record", "--pid", str(cluster.pid), "--subprocesses", "--nonblocking"]
    cmd += ["--rate", str(PROFILE_RATE)]
    cmd += os.environ.get("BENCH_PY_SPY_ARGS", "").split()  # e.g. --idle, --native
    recorders = [
        subprocess.Popen([*cmd, "--format", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
        subprocess.Popen([*cmd, "-o", str(svg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
    ]
    try:
        time.sleep(2)  # let py-spy attach to every process of the tree
        ids = _submit(args.runs)
        _wait_finished(ids, timeout=max(120.0, args.runs * 4.0), interval=0.05, cluster=cluster)
        workers = {int(run.worker.rsplit(":", 1)[1]) for run in _runs(ids)}
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        errors = []
        for recorder in recorders:
            try:
                _, stderr = recorder.communicate(timeout=30)
                errors.append(stderr.decode(errors="replace"))
            except subprocess.TimeoutExpired:
                recorder.kill()
    if not raw.exists():
        return {"error": "py-spy wrote no profile: " + " ".join(errors).strip()[-500:]}
    return {"svg": str(svg), "runs": len(ids), **summarize_py_spy(raw, workers, cluster.pid, len(ids))}


PROFILE_RATE = 250  # samples per second and thread

# py-spy leaves out threads it sees idle, but on a busy machine threads blocked in these calls
# still show up; a sample whose innermost frame is one of them is dropped, so a sample is about
# 1/RATE s of CPU of this process (SQLite's busy-wait sleeps and PostgreSQL's own work are not counted).
_IDLE_LEAVES = (
    "_worker (concurrent/futures/thread.py",
    "Condition.wait (",
    "Event.wait (",
    "EpollSelector.select (",
    "Connection._recv (",
    "Connection._poll (",
    "SemLock.__enter__ (",
    "Thread._wait_for_tstate_lock (",
    "Queue.get (",
    "Queue.put (",
    "Popen.poll (",
    "Connection.wait (psycopg",  # waiting for PostgreSQL to answer
    "SocketBuffer._read_from_socket (redis",
    "StepCollector._write_late (",  # the late writer's sleep (time.sleep shows as its caller)
    "_Heartbeat._beat_forever (",  # the lease heartbeat's sleep
)
# Roles of the qcluster processes, told apart by a frame only that role has.
_ROLE_MARKERS = [
    ("pusher (broker dequeue)", "pusher (django_q/pusher.py"),
    ("monitor (task results, ack)", "monitor (django_q/monitor.py"),
    ("sentinel (guard loop)", "Sentinel.guard (django_q/cluster.py"),
]
# Where a worker's CPU goes; a stack counts for the first bucket one of its frames matches.
_WORKER_BUCKETS = [
    ("DB connect (CONN_MAX_AGE=0, thread per call)", ("connect (django/db/backends/base/base.py",)),
    ("checkpoints: DjangoFlowPersistence.save_state", ("save_state (reviewconsole/engine/persistence.py",)),
    ("load_state (own thread + queries)", ("load_state (reviewconsole/engine/persistence.py",)),
    ("step rows: late writer thread", ("_write_late (reviewconsole/engine/events.py",)),
    ("run_claim", ("run_claim (reviewconsole/engine/services.py",)),
    ("run_complete", ("run_complete (reviewconsole/engine/services.py",)),
    ("Flow.__init__ (incl. Memory())", ("_flow_post_init (crewai/flow/runtime",)),
    ("replay.install", ("install (reviewconsole/engine/replay.py",)),
    ("runner reads (run, checkpoints, pause)", ("load_recorded (reviewconsole", "_open_pause (reviewconsole")),
    ("CrewAI kickoff loop (event loop, events)", ("kickoff (crewai/flow/runtime",)),
    ("CrewAI executor threads (methods, event handlers)", ("_worker (concurrent/futures/thread.py",)),
    ("other threads (thread start-up, asyncio)", ("Thread._bootstrap (threading.py",)),
    ("lease heartbeat thread", ("_beat_forever (reviewconsole/engine/runner.py",)),
    ("rest of run_flow", ("run_flow (reviewconsole/engine/tasks.py",)),
    ("django-q worker loop (pickle, queues, connections)", ("worker (django_q/worker.py",)),
]


def summarize_py_spy(raw: Path, worker_pids: set[int], leader_pid: int, runs: int) -> dict[str, Any]:
    """py-spy's collapsed stacks → CPU ms per run by process role, by worker bucket, top worker frames."""
    per_pid: Counter[int] = Counter()
    role_of: dict[int, str] = {leader_pid: "qcluster main process"}
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame]
        processes = [frame for frame in frames if frame.startswith("process ")]
        code = [frame for frame in frames if not frame.startswith("process ")]
        pid_text = processes[-1].split()[1].split(":")[0] if processes else ""
        pid = int(pid_text) if pid_text.isdigit() else -1
        if code and code[-1].startswith(_IDLE_LEAVES):
            continue
        per_pid[pid] += count
        if pid in worker_pids:
            for name, markers in _WORKER_BUCKETS:
                if any(marker in frame for frame in code for marker in markers):
                    buckets[name] += count
                    break
            else:
                buckets["other"] += count
            if code:
                leaves[code[-1].split(" (")[0] + " (" + code[-1].split(" (")[-1].split(":")[0] + ")"] += count
        elif pid not in role_of:
            for role, marker in _ROLE_MARKERS:
                if any(marker in frame for frame in code):
                    role_of[pid] = role
                    break

    def ms(samples: int) -> float:
        return samples / PROFILE_RATE * 1000 / runs

    by_role: Counter[str] = Counter()
    for pid, samples in per_pid.items():
        by_role["workers" if pid in worker_pids else role_of.get(pid, f"pid {pid}")] += samples
    return {
        "cpu_ms_per_run_by_role": [(role, ms(n)) for role, n in by_role.most_common()],
        "worker_cpu_ms_per_run": [(name, ms(n)) for name, n in buckets.most_common()],
        "worker_top_frames": [(frame, ms(n)) for frame, n in leaves.most_common(10)],
    }


class _Probe:
    """Wall time and calls of the engine's building blocks, and the DB work, in this process.

    Wraps module attributes at run time (nothing in the engine is edited) and
    restores them in `close()`.
    """

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.db: Counter[str] = Counter()
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attribute: str, label: str) -> None:
        original = getattr(owner, attribute)
        probe = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                probe.seconds[label] += time.perf_counter() - started
                probe.calls[label] += 1

        self._undo.append((owner, attribute, original))
        setattr(owner, attribute, timed)

    def count_db(self) -> None:
        from django.db.backends.base.base import BaseDatabaseWrapper
        from django.db.backends.utils import CursorWrapper

        probe = self
        execute, connect, commit = CursorWrapper.execute, BaseDatabaseWrapper.connect, BaseDatabaseWrapper.commit

        def counted_execute(cursor: Any, sql: str, params: Any = None) -> Any:
            verb = sql.split(None, 1)[0].upper() if sql else "?"
            if verb != "BEGIN":
                probe.db[f"statements: {verb}"] += 1
                if not cursor.db.in_atomic_block:
                    probe.db["transactions (commits)"] += 1
            return execute(cursor, sql, params)

        def counted_connect(wrapper: Any) -> Any:
            started = time.perf_counter()
            try:
                return connect(wrapper)
            finally:
                probe.db["connections opened"] += 1
                probe.seconds["DB connect (any thread)"] += time.perf_counter() - started
                probe.calls["DB connect (any thread)"] += 1

        def counted_commit(wrapper: Any) -> Any:
            probe.db["transactions (commits)"] += 1
            return commit(wrapper)

        for owner, attribute, replacement in (
            (CursorWrapper, "execute", counted_execute),
            (BaseDatabaseWrapper, "connect", counted_connect),
            (BaseDatabaseWrapper, "commit", counted_commit),
        ):
            self._undo.append((owner, attribute, getattr(owner, attribute)))
            setattr(owner, attribute, replacement)

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()
        self.db.clear()

    def close(self) -> None:
        for owner, attribute, original in reversed(self._undo):
            setattr(owner, attribute, original)
        self._undo.clear()


def profile_worker_path(runs: int) -> dict[str, Any]:
    """The worker's half in this process, without a broker: run_create(enqueue=False) + tasks.run_flow.

    Gives wall time per building block and the DB statements, transactions and
    connections per run. Nested blocks overlap (kickoff includes save_state).
    """
    from reviewconsole.engine import events, replay, runner, services, tasks
    from reviewconsole.engine.persistence import DjangoFlowPersistence
    from reviewconsole.engine.registry import get_flow

    flow_class = get_flow(FLOW_NAME).flow_class
    probe = _Probe()
    try:
        probe.wrap(tasks, "run_flow", "tasks.run_flow (whole worker path)")
        probe.wrap(services, "run_claim", "services.run_claim")
        probe.wrap(services, "run_complete", "services.run_complete")
        probe.wrap(flow_class, "kickoff", "Flow.kickoff (incl. save_state, events)")
        probe.wrap(flow_class, "__init__", "Flow.__init__ (incl. Memory())")
        probe.wrap(DjangoFlowPersistence, "save_state", "persistence.save_state")
        probe.wrap(DjangoFlowPersistence, "load_state", "persistence.load_state")
        probe.wrap(events.collector, "flush", "collector.flush (late writer, pauses)")
        probe.wrap(replay, "load_recorded", "replay.load_recorded")
        probe.wrap(replay, "install", "replay.install")
        probe.wrap(runner, "_open_pause", "runner._open_pause")
        probe.wrap(runner, "bootstrap_worker", "runner.bootstrap_worker")
        probe.count_db()
        for step in ("warm-up", "measure"):
            probe.reset()
            count = 5 if step == "warm-up" else runs
            for _ in range(count):
                run = services.run_create(flow_name=FLOW_NAME, inputs=dict(INPUTS), trigger="bench", enqueue=False)
                tasks.run_flow(str(run.id))
            _runs([run.id])
        return {
            "runs": runs,
            "blocks": [
                (label, probe.seconds[label] * 1000 / runs, probe.calls[label] / runs)
                for label, _ in probe.seconds.most_common()
            ],
            "db": sorted((name, n / runs) for name, n in probe.db.items()),
        }
    finally:
        probe.close()


# --------------------------------------------------------------------------- orchestration


def run_phase_in_child(broker: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    if broker == "redis":
        env["REDIS_URL"] = REDIS_URL
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--phase",
        broker,
        "--workdir",
        str(workdir),
        "--runs",
        str(args.runs),
        "--warmup",
        str(args.warmup),
        "--solo",
        str(args.solo),
        "--workers",
        str(args.workers),
        "--poll",
        str(args.poll),
    ]
    if args.profile and broker == args.profile_broker:
        cmd.append("--profile")
    completed = subprocess.run(cmd, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True, check=False)
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"full-stack phase '{broker}' failed (exit {completed.returncode}):\n{completed.stdout}")


def print_report(
    database: str, baseline: dict[str, Any], phases: list[dict[str, Any]], default: str, load: tuple[str, str]
) -> None:
    base = baseline["sqlite"]

    def baseline_row(label: str, figures: dict[str, Any]) -> list[Any]:
        return [
            label,
            "in-process",
            figures["runs"],
            figures["cost_ms"],
            figures["throughput"],
            figures["latency_p50_ms"],
            figures["latency_p95_ms"],
            None,
            None,
            figures["cost_ms"] / base["cost_ms"],
        ]

    rows = [baseline_row(f"BASELINE CrewAI kickoff + SQLite ({base['dir']})", base)]
    if "disk" in baseline:
        rows.append(baseline_row("(info) CrewAI kickoff + SQLite on disk", baseline["disk"]))
    rows.append(baseline_row("(info) CrewAI kickoff, no persistence", baseline["bare"]))
    for phase in phases:
        label = f"full stack, {phase['broker'].upper()} broker" + (" (default)" if phase["broker"] == default else "")
        rows.append(
            [
                label,
                f"{phase['workers']} workers",
                phase["runs"],
                phase["cost_ms"],
                phase["throughput"],
                phase["latency_p50_ms"],
                phase["latency_p95_ms"],
                phase["exec_p50_ms"],
                phase["solo_p50_ms"],
                phase["cost_ms"] / base["cost_ms"],
            ]
        )
    headers = ["setup", "where", "N", "cost ms/flow", "flows/s", "p50 ms", "p95 ms", "exec p50", "solo p50", "ratio"]
    print(f"\nEngine overhead: flow '{FLOW_NAME}' (4 methods, no LLM), {database}, {os.cpu_count()} CPUs")
    print_table(headers, rows)
    notes = [
        f"BASELINE: {base['runs'] // 2} kickoffs before and as many after the full stack, pooled "
        f"(cost {fmt(base['before_ms'])} ms before, {fmt(base['after_ms'])} ms after)",
        "cost = wall/N with N flows queued at once; ratio = cost / BASELINE cost",
        "p50/p95 = per-flow latency; full stack: created_at→finished_at, so it includes queueing behind the batch",
        "exec = started_at→finished_at in the worker; solo = latency of one run submitted alone",
    ]
    if "disk" in baseline:
        notes.append(f"on disk = CrewAI's SQLite file in {baseline['disk']['dir']} (fsync per save_state)")
    print("\n".join(f"  {note}" for note in notes))
    for phase in phases:
        rows_per_run = ", ".join(f"{k} {fmt(v)}" for k, v in phase["rows_per_run"].items())
        print(
            f"  {phase['broker']}: run_create {fmt(phase['submit_s'] * 1000 / phase['runs'])} ms/run in the bench "
            f"process; queue wait p50 {fmt(phase['pickup_p50_ms'])} ms; poll {phase['poll_s']} s; "
            f"rows per run: {rows_per_run}"
        )
    print(f"  load average (1 min) before/after: {load[0]} / {load[1]} (other processes on the machine skew figures)")


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def print_profile(broker: str, profile: dict[str, Any]) -> None:
    if "error" in profile:
        print(f"\nprofile of the {broker} qcluster: {profile['error']}")
        return
    print(
        f"\nqcluster CPU while {profile['runs']} more runs ran ({broker} broker; py-spy, flame graph {profile['svg']}):"
    )
    print_table(["process role", "CPU ms/run"], profile["cpu_ms_per_run_by_role"])
    print_table(["worker CPU by part", "CPU ms/run"], profile["worker_cpu_ms_per_run"])
    print_table(["worker: hottest leaf frames", "CPU ms/run"], profile["worker_top_frames"])


def print_worker_path(path: dict[str, Any]) -> None:
    print(f"\nworker path in-process (run_create(enqueue=False) + tasks.run_flow, {path['runs']} runs, wall time):")
    print_table(["block (nested blocks overlap)", "ms/run", "calls/run"], path["blocks"])
    print("  DB per run: " + ", ".join(f"{name} {fmt(n)}" for name, n in path["db"]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (finishes in under 3 minutes)")
    parser.add_argument("--runs", type=int, help="flows per measurement (default 300, --quick 60)")
    parser.add_argument("--warmup", type=int, help="warm-up runs before measuring (default 4 per worker)")
    parser.add_argument("--solo", type=int, help="runs submitted one at a time (default 20, --quick 10)")
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2), help="Q_WORKERS")
    parser.add_argument("--poll", type=float, default=0.05, help="Q_POLL_SECONDS (ORM broker)")
    parser.add_argument("--brokers", help="comma-separated: orm,redis (default: orm, and redis if REDIS_URL)")
    parser.add_argument("--profile", action="store_true", help="py-spy the qcluster during one more batch")
    parser.add_argument("--profile-broker", help="broker to profile (default: the default broker)")
    parser.add_argument(
        "--baseline-dir", default=default_baseline_dir(), help="where CrewAI's SQLite file goes (default: tmpfs)"
    )
    parser.add_argument("--phase", choices=["orm", "redis"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.runs = args.runs or (60 if args.quick else 300)
    args.warmup = args.warmup if args.warmup is not None else 4 * args.workers
    args.solo = args.solo if args.solo is not None else (10 if args.quick else 20)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase:
        # Child: the parent already chose the database and migrated it.
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewconsole.settings")
        os.environ["TASKS_SYNC"] = "0"
        os.environ["FLOW_MODULES"] = FLOW_MODULES
        django_setup()
        print(RESULT_PREFIX + json.dumps(full_stack_phase(args), default=str), flush=True)
        return 0

    os.environ.pop("REDIS_URL", None)  # see REDIS_URL above; CrewAI is not imported yet
    brokers = [b.strip() for b in (args.brokers or "").split(",") if b.strip()] or (
        ["orm", "redis"] if REDIS_URL else ["orm"]
    )
    if "redis" in brokers and not REDIS_URL:
        raise SystemExit("--brokers redis needs REDIS_URL")
    default = default_broker() if default_broker() in brokers else brokers[-1]
    args.profile_broker = args.profile_broker or default
    workdir = Path(tempfile.mkdtemp(prefix="reviewconsole-bench-engine-"))
    database = prepare_environment(workdir)
    log(f"database: {database}; work files (qcluster logs, profiles) in {workdir}")
    django_setup(migrate=True)

    load_before = load_average()
    log(f"baseline: CrewAI kickoff x{args.runs} (warm); load average {load_before}")
    baseline_runner = Baseline(Path(args.baseline_dir), workdir)
    try:
        first = baseline_runner.measure("sqlite", args.runs)
        baseline = {"bare": baseline_runner.measure("bare", args.runs)}
        if Path(args.baseline_dir).resolve() != workdir.resolve():
            baseline["disk"] = baseline_runner.measure("disk", min(args.runs, 20 if args.quick else 60))
        phases = []
        for broker in brokers:
            log(f"full stack, {broker} broker: {args.workers} workers, poll {args.poll}s")
            phases.append(run_phase_in_child(broker, args, workdir))
        log(f"baseline again: CrewAI kickoff x{args.runs}")
        baseline["sqlite"] = pooled(first, baseline_runner.measure("sqlite", args.runs))
    finally:
        baseline_runner.close()
    worker_path = None
    if args.profile:
        log("profile: the worker path in-process")
        worker_path = profile_worker_path(min(args.runs, 60))
    load = (load_before, load_average())

    print_report(database, baseline, phases, default, load)
    if worker_path:
        print_worker_path(worker_path)
    for phase in phases:
        if phase.get("profile"):
            print_profile(phase["broker"], phase["profile"])
    chosen = next(phase for phase in phases if phase["broker"] == default)
    ratio = chosen["cost_ms"] / baseline["sqlite"]["cost_ms"]
    reason = "REDIS_URL is set" if default == "redis" else "no REDIS_URL"
    print(f"\nratio below uses the {default.upper()} broker ({reason}); design target <= 2.0")
    print(f"engine_overhead_ratio={ratio:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
