"""Throughput with one and with two workers on PostgreSQL and Redis: does adding a worker add flows per second?

    .venv/bin/python bench/scale.py [--quick] [--runs N] [--workers 1,2]

Per worker count, in this process (the same database, broker and machine, one after the other): that many
`manage.py qcluster` processes of one worker each (as on separate machines) are started and warmed up, then
`--runs` invoice runs (`invoice_processing`, flows/invoices.py, with the offline demo model) are queued at once.

    to pause    = runs / seconds from queueing them to the last one waiting for review
    to complete = runs / seconds from deciding them all (approved through `decide()`, as the pages do, in
                  this process) to the last one completed: the resumes

The ratio is each count's figure over the first count's (the baseline, 1 worker), measured in the same run:
on 2 shared cores it says how much a second worker adds here, not on real machines. The load average is
printed before and after; read the figures against it.

Database: `reviewconsole_bench_scale` on the server of a postgres:// DATABASE_URL (else the local one,
postgres://postgres@127.0.0.1:5432), created and migrated here; Redis: REDIS_URL, else redis://127.0.0.1:6379/9.
About 2 minutes with --quick (60 runs per count), 4 without (150).

The last line printed is `scale_pause_fps_1=… scale_pause_fps_2=… scale_pause_ratio_2=… scale_complete_fps_1=…
scale_complete_fps_2=… scale_complete_ratio_2=…`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    LOCAL_POSTGRES_URL,
    LOCAL_REDIS_URL,
    QCluster,
    cluster_env,
    configure_named_postgres_database,
    django_setup,
    log,
    print_table,
    wait_until,
)

DB_NAME = "reviewconsole_bench_scale"
REVIEWER = "bench_scale_reviewer"


def _wait_all(ids: list[Any], status: str, clusters: list[QCluster]) -> None:
    """Until every run is in `status`; a failed run or a dead cluster stops the bench."""
    from reviewconsole.engine.models import FlowRun, RunStatus

    def reached() -> bool:
        dead = [cluster for cluster in clusters if not cluster.running()]
        if dead:
            raise RuntimeError(f"qcluster exited early:\n{dead[0].output()}")
        rows = list(FlowRun.objects.filter(id__in=ids).values_list("status", "error"))
        failed = [error for status, error in rows if status == RunStatus.FAILED]
        if failed:
            raise RuntimeError(f"{len(failed)} bench runs failed, e.g.: {failed[0]}")
        return sum(row_status == status for row_status, _ in rows) == len(ids)

    wait_until(reached, timeout=600, interval=0.05, what=f"{len(ids)} runs to be {status}")


def _start_runs(count: int) -> list[Any]:
    from flows.invoice_samples import sample_invoices
    from reviewconsole.engine.services import run_create

    return [
        run_create(flow_name="invoice_processing", inputs={"raw_invoice": sample.text}, trigger="bench").id
        for sample in sample_invoices(count)
    ]


def _decide_all(ids: list[Any], reviewers: list[Any]) -> None:
    """Approve every pending item; one that needs four eyes (high value) gets the second reviewer's approval too."""
    from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
    from reviewconsole.reviews.services import decide

    pending = ReviewItem.objects.filter(run_id__in=ids, status=ReviewStatus.PENDING).values_list("id", flat=True)
    for item_id in list(pending):
        if not isinstance(decide(item_id=item_id, user=reviewers[0], outcome="approved"), Decision):
            decide(item_id=item_id, user=reviewers[1], outcome="approved")


def measure(workers: int, runs: int, workdir: Path) -> dict[str, float]:
    """Flows per second to pause and to completion with `workers` single-worker clusters."""
    from django.contrib.auth import get_user_model

    from reviewconsole.engine.models import RunStatus

    reviewers = [get_user_model().objects.get_or_create(username=f"{REVIEWER}_{n}")[0] for n in (1, 2)]
    env = cluster_env(Q_WORKERS="1")
    clusters = [QCluster(env, workdir / f"qcluster-{workers}-{n}.log") for n in range(workers)]
    try:
        # Warm-up: every cluster has imported CrewAI and run a flow before the clock starts.
        warm = _start_runs(2 * workers)
        _wait_all(warm, RunStatus.WAITING_REVIEW, clusters)
        _decide_all(warm, reviewers)
        _wait_all(warm, RunStatus.COMPLETED, clusters)

        ids = _start_runs(runs)
        started = time.monotonic()
        _wait_all(ids, RunStatus.WAITING_REVIEW, clusters)
        to_pause = time.monotonic() - started
        started = time.monotonic()
        _decide_all(ids, reviewers)
        _wait_all(ids, RunStatus.COMPLETED, clusters)
        to_complete = time.monotonic() - started
    finally:
        for cluster in clusters:
            cluster.stop()
    log(f"{workers} worker(s): {runs} runs paused in {to_pause:.1f}s, completed {to_complete:.1f}s after deciding")
    return {"pause": runs / to_pause, "complete": runs / to_complete}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 runs per worker count instead of 150")
    parser.add_argument("--runs", type=int, help="runs per worker count (default 150, --quick 60)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts; the first is the baseline")
    args = parser.parse_args(argv)
    args.runs = args.runs or (60 if args.quick else 150)
    args.counts = [int(count) for count in args.workers.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DATABASE_URL", LOCAL_POSTGRES_URL)
    os.environ.setdefault("REDIS_URL", LOCAL_REDIS_URL)
    database = configure_named_postgres_database(DB_NAME)
    # This process (the web side) and its clusters read these from the environment the clusters inherit.
    os.environ["TASKS_SYNC"] = "0"
    os.environ["FLOW_MODULES"] = "flows"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    django_setup(migrate=True)
    from django_q.brokers import get_broker

    # Tasks an earlier, interrupted bench left behind would be counted in the first measurement.
    get_broker().purge_queue()
    get_broker().first().purge_queue()
    workdir = Path(tempfile.mkdtemp(prefix="reviewconsole-bench-scale-"))
    log(f"database: {database}; Redis: {os.environ['REDIS_URL']}; qcluster logs in {workdir}")

    load_before = f"{os.getloadavg()[0]:.2f}"
    figures = {count: measure(count, args.runs, workdir) for count in args.counts}
    base = figures[args.counts[0]]
    print(f"\n{args.runs} invoice runs per worker count; load average {load_before} → {os.getloadavg()[0]:.2f}")
    print_table(
        ["workers", "to pause (flows/s)", "ratio", "to complete (flows/s)", "ratio"],
        [
            [count, f["pause"], f["pause"] / base["pause"], f["complete"], f["complete"] / base["complete"]]
            for count, f in figures.items()
        ],
    )
    line = []
    for kind in ("pause", "complete"):
        line += [f"scale_{kind}_fps_{count}={f[kind]:.2f}" for count, f in figures.items()]
        line += [f"scale_{kind}_ratio_{count}={f[kind] / base[kind]:.2f}" for count, f in figures.items()][1:]
    print("\n" + " ".join(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
