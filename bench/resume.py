"""Decision to flow resumed: from a reviewer's decision POST to the paused flow running its next step.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/resume.py [--quick] [--redis]
        [--samples N] [--warmup N] [--workers N] [--poll SECONDS] [--brokers orm,redis] [--backlog N]

Design targets: p50 under 1 s with the ORM broker, under 200 ms with Redis (p95 is reported too); and with
a backlog of 200 queued new runs, p50 under 1 s (a decision goes ahead of new work).

The flow is `bench_resume` (bench/flows_resume.py): it pauses at once for review (`@human_review`), and the
router after the decision takes the worker's wall-clock time as its first statement. Per broker, in a
child process (the settings pick the broker from REDIS_URL when they load), a real `manage.py qcluster`
subprocess runs the flows: warm-up and measured runs are started together and wait for review, then they
are decided one at a time through the real decision view (Django's test Client in this process, logged in
as a manager, "approve"), each after a random pause so the decision lands at any point of the broker's
poll cycle. Then as many decisions again with a backlog: before each, new `bench_resume` runs are queued
until `--backlog` (200) runs wait in the queue, so the worker always has new work to take instead.
Per decision:

    latency = the next step's start (worker clock) - just before the POST (this clock; same machine),
              the sum of:
    commit  = just before the POST → `resume_flow` in the broker (the view, the decision's transaction,
              then its first on-commit hook, `resume_flow` handed to the broker)
    pickup  = → the worker claimed the resume (`ReviewItem.resumed_at`): the pusher's poll, the worker
              becoming free, the task's start and claim
    restore = → the next step started: the flow restored from its pause and resumed by CrewAI
    POST    = the whole request (it goes on after the commit: flash message, next item, redirect)

Brokers: the ORM broker always; Redis when REDIS_URL is set, or with --redis (redis://127.0.0.1:6379/9).
The worker settings are the project's (Q_WORKERS, Q_POLL_SECONDS from the environment, else the settings'
defaults) unless --workers/--poll say otherwise; the report prints the ones used. Database: with a
postgres:// DATABASE_URL the database `reviewconsole_bench_resume` on that server (created and migrated
here; the figure of record, as deployed), else a fresh SQLite file under /tmp. About 5 minutes for both
brokers on 2 busy cores (--quick: 3.5 minutes).

The last line printed is `resume_p50_ms_orm=… resume_p95_ms_orm=… resume_backlog_p50_ms_orm=…
resume_backlog_p95_ms_orm=…` and, when Redis was measured, the same four for `redis` on the same line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    LOCAL_REDIS_URL,
    QCluster,
    broker_env,
    cluster_env,
    configure_bench_database,
    django_setup,
    log,
    print_result,
    print_table,
    run_result_child,
    summarize,
    wait_until,
)

DB_NAME = "reviewconsole_bench_resume"
FLOW_MODULES = "bench.flows_resume"
REVIEWER = "bench_resume_manager"
RESUME_TASK = "reviewconsole.engine.tasks.resume_flow"
TARGET_P50_MS = {"orm": 1000.0, "redis": 200.0}
TARGET_BACKLOG_P50_MS = 1000.0
# The longest random pause before a decision: longer than the default poll interval (0.1 s), so decisions
# fall at every phase of the ORM broker's poll cycle instead of right after the previous task.
MAX_THINK_SECONDS = 0.25
STATS = ("p50", "p95")


# --------------------------------------------------------------------------- child: one broker


def _wait_for(ids: list[Any], statuses: set[str], *, cluster: QCluster, timeout: float, interval: float) -> None:
    """Until every run is in one of `statuses`; a run that failed or a cluster that died stops the bench."""
    from reviewconsole.engine.models import FlowRun, RunStatus

    def reached() -> bool:
        if not cluster.running():
            raise RuntimeError(f"qcluster exited early:\n{cluster.output()}")
        rows = list(FlowRun.objects.filter(id__in=ids).values_list("status", "error"))
        failed = [error for status, error in rows if status == RunStatus.FAILED]
        if failed:
            raise RuntimeError(f"{len(failed)} bench runs failed, e.g.: {failed[0]}")
        return sum(status in statuses for status, _ in rows) == len(ids)

    wait_until(reached, timeout=timeout, interval=interval, what=f"{len(ids)} runs to reach {sorted(statuses)}")


def _wait_queue_idle(cluster: QCluster) -> None:
    """Until the broker holds no task (the new-item notifications the pauses queued), then a moment for the last."""
    from django_q.brokers import get_broker

    broker = get_broker()
    wait_until(lambda: cluster.running() and broker.queue_size() == 0, timeout=120, what="an empty task queue")
    time.sleep(1)


def _reviewer() -> Any:
    from django.contrib.auth import get_user_model

    from reviewconsole.reviews.roles import role_group

    user, _ = get_user_model().objects.get_or_create(username=REVIEWER)
    user.groups.add(role_group("manager"))
    return user


@contextlib.contextmanager
def _enqueue_times() -> Iterator[dict[str, float]]:
    """When each item's `resume_flow` was in the broker: the end of the decision's commit, for the breakdown.

    `enqueue_on_commit` imports `async_task` at each call, so replacing the module's attribute is enough.
    """
    import django_q.tasks

    original = django_q.tasks.async_task
    times: dict[str, float] = {}

    def recording(func: Any, *args: Any, **kwargs: Any) -> Any:
        task_id = original(func, *args, **kwargs)
        if func == RESUME_TASK:
            times[args[0]] = time.time()
        return task_id

    django_q.tasks.async_task = recording
    try:
        yield times
    finally:
        django_q.tasks.async_task = original


def _decide_and_time(client: Any, item: Any, cluster: QCluster, enqueued: dict[str, float]) -> dict[str, float]:
    """POST "approve" for one paused item, wait for its run to finish; the sample's times in ms."""
    from django.urls import reverse

    from reviewconsole.engine.models import FlowRun, RunStatus
    from reviewconsole.reviews.models import ReviewItem

    url = reverse("reviews:decide", args=[item.id])
    before = time.time()
    response = client.post(url, {"outcome": "approved"})
    answered = time.time()
    if response.status_code != 302:
        raise RuntimeError(f"decision POST: HTTP {response.status_code}\n{response.content[:600].decode()}")
    client.cookies.pop("messages", None)  # flash messages a browser would show on the next page
    _wait_for([item.run_id], {RunStatus.COMPLETED}, cluster=cluster, timeout=60, interval=0.01)
    run = FlowRun.objects.get(id=item.run_id)
    resumed = ReviewItem.objects.values_list("resumed_at", flat=True).get(id=item.id).timestamp()
    next_step = float(run.result["next_step_started"])
    committed = enqueued[str(item.id)]
    return {
        "latency": (next_step - before) * 1000,
        "commit": (committed - before) * 1000,
        "pickup": (resumed - committed) * 1000,
        "restore": (next_step - resumed) * 1000,
        "post": (answered - before) * 1000,
        "finished": (run.finished_at.timestamp() - before) * 1000,
    }


def _top_up_backlog(size: int) -> int:
    """Queue new runs until `size` wait; returns how many were queued."""
    from bench.flows_resume import FLOW_NAME
    from reviewconsole.engine import services
    from reviewconsole.engine.models import FlowRun, RunStatus

    missing = size - FlowRun.objects.filter(status=RunStatus.QUEUED).count()
    for _ in range(missing):
        services.run_create(flow_name=FLOW_NAME, inputs={}, trigger="bench")
    return max(missing, 0)


def _cancel_backlog() -> None:
    """Cancel the runs still queued, so their tasks return at once wherever they are handed out later."""
    from reviewconsole.engine import services
    from reviewconsole.engine.models import FlowRun, RunStatus

    for run_id in FlowRun.objects.filter(status=RunStatus.QUEUED).values_list("id", flat=True):
        with contextlib.suppress(services.RunStateError):
            services.run_cancel(run_id=run_id, actor=None)


def _decide_all(client: Any, items: list[Any], cluster: QCluster, *, backlog: int = 0) -> list[dict[str, float]]:
    """Decide `items` one at a time, each after a random pause (and with `backlog` new runs queued before it)."""
    samples = []
    with _enqueue_times() as enqueued:
        for item in items:
            if backlog:
                _top_up_backlog(backlog)
            time.sleep(random.uniform(0, MAX_THINK_SECONDS))
            samples.append(_decide_and_time(client, item, cluster, enqueued))
    return samples


def _stats(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        key: {"p50": stats.median, "p95": stats.p95, "max": stats.maximum}
        for key in samples[0]
        for stats in [summarize([sample[key] for sample in samples])]
    }


def measure_broker(args: argparse.Namespace) -> dict[str, Any]:
    """In a child process whose settings use `args.phase` as the broker: start runs, decide them one by one."""
    from django.conf import settings
    from django.test import Client
    from django_q.brokers import get_broker

    from bench.flows_resume import FLOW_NAME
    from reviewconsole.engine import services
    from reviewconsole.engine.models import FlowRun, RunStatus
    from reviewconsole.reviews.models import ReviewItem

    if args.phase == "orm":
        # Tasks a killed earlier bench left in the bench database would run first. (A Redis queue may be
        # shared, so it is left alone: stale tasks find their run or item taken and return at once.)
        get_broker().purge_queue()
        get_broker().first().purge_queue()
    _cancel_backlog()  # an earlier bench stopped during its backlog phase
    client = Client(SERVER_NAME="localhost")
    client.force_login(_reviewer())
    count = args.warmup + args.samples
    backlog_count = args.samples if args.backlog else 0
    cluster = QCluster(cluster_env(), Path(args.workdir) / f"qcluster-{args.phase}.log")
    try:
        log(f"[{args.phase}] qcluster pid {cluster.pid}; {count + backlog_count} runs pausing for review")
        ids = [
            services.run_create(flow_name=FLOW_NAME, inputs={}, trigger="bench").id
            for _ in range(count + backlog_count)
        ]
        _wait_for(ids, {RunStatus.WAITING_REVIEW}, cluster=cluster, timeout=300, interval=0.1)
        _wait_queue_idle(cluster)
        items = list(ReviewItem.objects.filter(run_id__in=ids).order_by("created_at"))
        log(f"[{args.phase}] {args.warmup} warm-up and {args.samples} measured decisions, one at a time")
        measured = _decide_all(client, items[:count], cluster)[args.warmup :]
        backlog = {}
        if args.backlog:
            log(f"[{args.phase}] {backlog_count} decisions, each with {args.backlog} new runs queued")
            backlog_samples = _decide_all(client, items[count:], cluster, backlog=args.backlog)
            queued = FlowRun.objects.filter(status=RunStatus.QUEUED).count()
            backlog = {"size": args.backlog, "samples": len(backlog_samples), "left": queued}
            backlog.update(_stats(backlog_samples))
    finally:
        cluster.stop()
        _cancel_backlog()
    q_cluster = settings.Q_CLUSTER
    return {
        "broker": args.phase,
        "workers": q_cluster["workers"],
        "poll_s": q_cluster["poll"] if args.phase == "orm" else None,
        "bulk": q_cluster.get("bulk", 1),
        "samples": len(measured),
        **_stats(measured),
        "backlog": backlog,
    }


# --------------------------------------------------------------------------- parent: report


def print_report(database: str, phases: list[dict[str, Any]], load: tuple[str, str]) -> None:
    headers = ["broker", "workers", "poll s", "N", "p50 ms", "p95 ms", "max ms", "commit p50", "pickup p50"]
    headers += ["pickup p95", "restore p50", "POST p50", "finished p50", "target p50", "verdict"]
    rows = []
    for phase in phases:
        latency, target = phase["latency"], TARGET_P50_MS[phase["broker"]]
        rows.append(
            [
                phase["broker"].upper(),
                phase["workers"],
                phase["poll_s"],
                phase["samples"],
                latency["p50"],
                latency["p95"],
                latency["max"],
                phase["commit"]["p50"],
                phase["pickup"]["p50"],
                phase["pickup"]["p95"],
                phase["restore"]["p50"],
                phase["post"]["p50"],
                phase["finished"]["p50"],
                f"< {target:.0f}",
                "met" if latency["p50"] < target else "missed",
            ]
        )
    print(f"\nDecision POST → flow's next step started: flow 'bench_resume', {database}, {os.cpu_count()} CPUs")
    print_table(headers, rows)
    backlog_rows = [
        [
            phase["broker"].upper(),
            backlog["size"],
            backlog["samples"],
            backlog["latency"]["p50"],
            backlog["latency"]["p95"],
            backlog["latency"]["max"],
            backlog["pickup"]["p50"],
            backlog["restore"]["p50"],
            backlog["left"],
            f"< {TARGET_BACKLOG_P50_MS:.0f}",
            "met" if backlog["latency"]["p50"] < TARGET_BACKLOG_P50_MS else "missed",
        ]
        for phase in phases
        for backlog in [phase["backlog"]]
        if backlog
    ]
    if backlog_rows:
        print("\nThe same with new runs queued: before each decision, runs are added until the backlog is full")
        headers = ["broker", "backlog", "N", "p50 ms", "p95 ms", "max ms", "pickup p50", "restore p50"]
        print_table([*headers, "queued at end", "target p50", "verdict"], backlog_rows)
    notes = [
        "latency = next step started (worker clock) - just before the POST = commit + pickup + restore; in ms",
        "commit = → resume_flow in the broker (on commit); pickup = → worker claimed it; restore = → next step ran",
        "POST = the whole decision request; finished = until the run completed (one more step, final checkpoint)",
        "django-q2: ORM broker: the pusher polls the queue table and sleeps `poll` s (Q_POLL_SECONDS) after "
        "an empty poll; Redis: BLPOP hands a task over as it is pushed (poll unused)",
        "workers = Q_WORKERS; decide() queues resume_flow on the queue workers serve first (engine/brokers.py), "
        "and the type's autonomy check on the other, so one free worker takes the resume",
        "backlog: a cluster holds at most Q_WORKERS² + 1 tasks taken off the queue besides those it runs "
        "(queue_limit, and one in its pusher), so a resume waits for those, not for the backlog",
        f"load average (1 min) before/after: {load[0]} / {load[1]} (other processes on the machine skew figures)",
    ]
    print("\n".join(f"  {note}" for note in notes))


def load_average() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="25 decisions per broker instead of 60")
    parser.add_argument("--samples", type=int, help="measured decisions per broker (default 60, --quick 25)")
    parser.add_argument("--warmup", type=int, default=4, help="decisions before measuring (default 4)")
    parser.add_argument("--workers", type=int, help="Q_WORKERS for the qcluster (default: the environment's)")
    parser.add_argument("--poll", type=float, help="Q_POLL_SECONDS for the qcluster (default: the environment's)")
    parser.add_argument("--redis", action="store_true", help=f"measure Redis too (REDIS_URL, else {LOCAL_REDIS_URL})")
    parser.add_argument("--brokers", help="comma-separated: orm,redis (default: orm, and redis if REDIS_URL/--redis)")
    parser.add_argument(
        "--backlog", type=int, default=200, help="new runs kept queued in the second round (default 200; 0: none)"
    )
    parser.add_argument("--phase", choices=["orm", "redis"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.samples = args.samples or (25 if args.quick else 60)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase:
        # Child: the parent chose the database and the worker settings in the environment.
        django_setup(migrate=True)
        print_result(measure_broker(args))
        return 0

    redis_url = os.environ.get("REDIS_URL") or (LOCAL_REDIS_URL if args.redis else "")
    brokers = [b.strip() for b in (args.brokers or "").split(",") if b.strip()] or (
        ["orm", "redis"] if redis_url else ["orm"]
    )
    if "redis" in brokers and not redis_url:
        raise SystemExit("--brokers redis needs REDIS_URL or --redis")
    workdir = Path(tempfile.mkdtemp(prefix="reviewconsole-bench-resume-"))
    database = configure_bench_database(workdir, name=DB_NAME)
    # The bench process (the web side) and its qcluster must agree on these, so both read them from the
    # environment the children inherit.
    os.environ["TASKS_SYNC"] = "0"
    # The figure is the way from a decision to its flow; with undo on, a decision waits out UNDO_SECONDS first.
    os.environ["UNDO_SECONDS"] = "0"
    os.environ["FLOW_MODULES"] = FLOW_MODULES
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if args.workers:
        os.environ["Q_WORKERS"] = str(args.workers)
    if args.poll is not None:
        os.environ["Q_POLL_SECONDS"] = str(args.poll)
    log(f"database: {database}; qcluster logs in {workdir}")

    load_before = load_average()
    phases = []
    for broker in brokers:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", broker, "--workdir", str(workdir)]
        cmd += ["--samples", str(args.samples), "--warmup", str(args.warmup), "--backlog", str(args.backlog)]
        phases.append(run_result_child(cmd, broker_env(broker, redis_url)))
    print_report(database, phases, (load_before, load_average()))
    figures = []
    for phase in phases:
        figures += [f"resume_{stat}_ms_{phase['broker']}={phase['latency'][stat]:.1f}" for stat in STATS]
        if phase["backlog"]:
            latency = phase["backlog"]["latency"]
            figures += [f"resume_backlog_{stat}_ms_{phase['broker']}={latency[stat]:.1f}" for stat in STATS]
    print("\n" + " ".join(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
