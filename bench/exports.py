"""Server memory of the streamed exports: the audit trail (CSV) and the dataset (JSONL) of 100k decisions.

    .venv/bin/python bench/exports.py [--quick] [--decisions N] [--backend sqlite|postgres ...] [--regenerate]

The design's target: "a streamed export of 100k decisions stays under 200 MB of server memory". Each backend
is measured in two processes of its own, so that nothing else has raised its memory first:

- SQLite: a new database file under /tmp, seeded every run;
- PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres): a database of its own on
  that server, `reviewconsole_exports_bench`, kept between runs and seeded again only when its count of
  decisions is not the requested one (or with --regenerate).

Data (no flows run), written with bulk_create in batches: per decision a FlowRun with 1 KB of input text, its
PendingFeedback, a decided ReviewItem with an invoice-like output of about 1 KB, its GateDecision with the
verdict, and the Decision: approved, edited (with its field diff) or rejected (with a reason and a comment),
by one of 20 reviewers; every fifth one also has a four-eyes first approval.

Measurement, in a fresh process per backend and export: Django set up, the manager logged in (test Client,
force_login), one export of a 10-row range first so that every module, template and connection is loaded.
Then the baseline: this process's resident set (VmRSS). Then the whole export as the server produces it: the
request through middleware and view, and every piece of the streamed body read and dropped, as a WSGI server
writes it to the socket. The peak is VmHWM, the kernel's high-water mark of the resident set (reset after the
warm-up by writing to /proc/self/clear_refs); "growth" is peak minus baseline: what the export cost. Then the
same export again under tracemalloc, whose peak counts Python allocations alone.

The target is on the growth: the baseline is the web process as it runs anyway, and it is mostly the imports
(about 110 MB for Django and the project; about 235 MB once the flows, and with them CrewAI, are loaded, which
the audit export does for the review reasons' labels, as the queue and the type's page do).

The last line printed is `exports_growth_max_mb=<the highest growth> exports_peak_rss_mb=<the highest peak>`.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    LOCAL_POSTGRES_URL,
    configure_bench_database,
    django_setup,
    fmt,
    log,
    print_result,
    print_table,
    run_result_child,
)

DB_NAME = "reviewconsole_exports_bench"
TARGET_MB = 200.0
DEFAULT_DECISIONS = 100_000
QUICK_DECISIONS = 20_000
BATCH = 2_000
REVIEWERS = 20
TYPE = "invoice"
MANAGER = "bench_export_manager"
KINDS = ("audit", "dataset")
REJECT_REASONS = ["wrong_data", "incomplete", "not_applicable", "other"]


# --------------------------------------------------------------------------- memory


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    return _status_kb("VmHWM") / 1024


def reset_peak_rss() -> None:
    """Set the high-water mark to the current resident set (Linux: "5" to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


# --------------------------------------------------------------------------- data


def _output(rng: random.Random, number: int) -> dict[str, Any]:
    lines = [
        {"description": f"Item {i} of order {number}", "quantity": rng.randint(1, 50), "amount": rng.randint(5, 900)}
        for i in range(8)
    ]
    return {
        "vendor": f"Vendor {number % 997} Supplies Ltd",
        "invoice_number": f"INV-{number:08d}",
        "invoice_date": "2026-10-01",
        "currency": "EUR",
        "total": sum(line["amount"] for line in lines),
        "line_items": lines,
    }


def seed(count: int) -> None:
    """`count` decided invoice items with their runs, gate decisions and decisions (and some first approvals)."""
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.utils import timezone

    from reviewconsole.autonomy.models import GateDecision, Route, Verdict
    from reviewconsole.autonomy.services import policy_ensure
    from reviewconsole.engine.models import FlowRun, PendingFeedback, RunStatus
    from reviewconsole.reviews.diff import field_diff
    from reviewconsole.reviews.models import Decision, FirstApproval, ReviewItem, ReviewStatus
    from reviewconsole.reviews.roles import role_grant

    rng = random.Random(7)
    manager, _ = User.objects.get_or_create(username=MANAGER)
    role_grant(user=manager, role="manager")
    reviewers = [User.objects.get_or_create(username=f"bench_export_reviewer_{i}")[0] for i in range(REVIEWERS)]
    policy_ensure(output_type=TYPE)
    now = timezone.now()
    started = time.monotonic()
    for offset in range(0, count, BATCH):
        size = min(BATCH, count - offset)
        runs, pendings, items, gates, decisions, firsts = [], [], [], [], [], []
        for number in range(offset, offset + size):
            output = _output(rng, number)
            run = FlowRun(
                id=uuid.uuid4(),
                flow_name="invoice_processing",
                status=RunStatus.COMPLETED,
                inputs={"raw_invoice": f"Invoice {number}\n" + "Widgets | 10 | 12.50 | 125.00\n" * 30},
            )
            pending = PendingFeedback(flow_uuid=str(run.id), method="extract", context={}, state={}, cleared_at=now)
            item = ReviewItem(
                id=uuid.uuid4(),
                run=run,
                pending=pending,
                method="extract",
                output_type=TYPE,
                reason="high_value" if number % 5 == 0 else "low_confidence",
                confidence=rng.random(),
                output=output,
                outcomes=["approved", "rejected"],
                status=ReviewStatus.DECIDED,
                decided_at=now,
                created_at=now,
            )
            roll = rng.random()
            edited = {**output, "total": output["total"] + 1} if 0.7 <= roll < 0.9 else None
            rejected = roll >= 0.9
            correct = edited is None and not rejected
            gates.append(
                GateDecision(
                    output_type=TYPE,
                    confidence=item.confidence,
                    route=Route.HUMAN_REVIEW,
                    reason=item.reason,
                    run=run,
                    review_item=item,
                    flow_version="bench",
                    model="demo",
                    verdict=Verdict.CORRECT if correct else Verdict.INCORRECT,
                    reject_reason="wrong_data" if rejected else "",
                    verdict_at=now,
                )
            )
            decisions.append(
                Decision(
                    item=item,
                    outcome="rejected" if rejected else "approved",
                    edited_output=edited,
                    diff=field_diff(output, edited) if edited is not None else [],
                    comment="=The total is wrong" if rejected else "",
                    reason_code=rng.choice(REJECT_REASONS) if rejected else "",
                    user=rng.choice(reviewers),
                    output_type=TYPE,
                    item_created_at=now,
                    handling_seconds=rng.uniform(3, 120),
                )
            )
            if number % 5 == 0 and not rejected:
                firsts.append(FirstApproval(item=item, outcome="approved", user=rng.choice(reviewers)))
            runs.append(run)
            pendings.append(pending)
            items.append(item)
        with transaction.atomic():
            FlowRun.objects.bulk_create(runs)
            PendingFeedback.objects.bulk_create(pendings)
            for item in items:
                item.pending_id = item.pending.pk
            ReviewItem.objects.bulk_create(items)
            GateDecision.objects.bulk_create(gates)
            Decision.objects.bulk_create(decisions)
            FirstApproval.objects.bulk_create(firsts)
        log(f"seeded {offset + size:,} of {count:,} decisions ({time.monotonic() - started:.0f} s)")


def seed_if_needed(count: int, regenerate: bool) -> None:
    from django.db import connection

    from reviewconsole.reviews.models import Decision

    have = Decision.objects.filter(output_type=TYPE).count()
    if have == count and not regenerate:
        log(f"{count:,} decisions already there: kept")
        return
    if have:
        log(f"{have:,} decisions there, {count:,} wanted: emptying the tables")
        tables = [
            "reviews_firstapproval",
            "reviews_decision",
            "autonomy_gatedecision",
            "reviews_reviewitem",
            "engine_pendingfeedback",
            "engine_flowrun",
        ]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
            else:
                for table in tables:
                    cursor.execute(f"DELETE FROM {table}")
    seed(count)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


# --------------------------------------------------------------------------- measurement (child)


def _export(client: Any, kind: str, query: dict[str, str]) -> tuple[int, int]:
    """The whole export as the server produces it: (status, bytes); each piece is dropped once counted."""
    response = client.get(f"/autonomy/{TYPE}/export/{'audit.csv' if kind == 'audit' else 'dataset.jsonl'}", query)
    size = 0
    for piece in response.streaming_content:
        size += len(piece)
    return response.status_code, size


def measure(kind: str) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.test import Client

    from reviewconsole.reviews.models import Decision

    # A host ALLOWED_HOSTS has by default (the test client's "testserver" is only allowed under tests).
    client = Client(headers={"host": "localhost"})
    client.force_login(User.objects.get(username=MANAGER))
    rows = Decision.objects.filter(output_type=TYPE).count()
    # Warm-up: every module, the flows' reasons, the connection; a range that holds no decision.
    status, _ = _export(client, kind, {"date_to": "2000-01-01"})
    assert status == 200, status
    gc.collect()
    baseline = rss_mb()
    reset_peak_rss()
    started = time.monotonic()
    status, size = _export(client, kind, {})
    seconds = time.monotonic() - started
    assert status == 200, status
    peak = peak_rss_mb()
    gc.collect()
    tracemalloc.start()
    _export(client, kind, {})
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "kind": kind,
        "rows": rows,
        "bytes": size,
        "seconds": seconds,
        "baseline_mb": baseline,
        "peak_mb": peak,
        "growth_mb": peak - baseline,
        "tracemalloc_peak_mb": traced_peak / 2**20,
    }


def child(args: argparse.Namespace) -> None:
    django_setup(migrate=args.child == "seed")
    if args.child == "seed":
        seed_if_needed(args.decisions, args.regenerate)
        print_result({"seeded": args.decisions})
    else:
        print_result(measure(args.child))


# --------------------------------------------------------------------------- parent


def _backend_env(backend: str) -> tuple[dict[str, str], str]:
    env = dict(os.environ)
    if backend == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{Path(tempfile.mkdtemp(prefix='reviewconsole-exports-')) / 'bench.sqlite3'}"
        return env, "SQLite"
    url = os.environ.get("DATABASE_URL", "")
    os.environ["DATABASE_URL"] = url if url.startswith("postgres") else LOCAL_POSTGRES_URL
    label = configure_bench_database(name=DB_NAME)
    env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    return env, label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DECISIONS:,} decisions instead of 100k")
    parser.add_argument("--decisions", type=int, default=None)
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"))
    parser.add_argument("--regenerate", action="store_true", help="seed the PostgreSQL data set again")
    parser.add_argument("--child", choices=("seed", *KINDS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decisions is None:
        args.decisions = QUICK_DECISIONS if args.quick else DEFAULT_DECISIONS
    if args.child:
        child(args)
        return
    # As served: no query log kept in memory (DEBUG), no per-request debug output.
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    results = []
    for backend in args.backend or ("sqlite", "postgres"):
        env, label = _backend_env(backend)
        log(f"{label}: {args.decisions:,} decisions")
        common = [sys.executable, __file__, "--decisions", str(args.decisions)]
        run_result_child([*common, "--child", "seed", *(["--regenerate"] if args.regenerate else [])], env)
        for kind in KINDS:
            result = run_result_child([*common, "--child", kind], env)
            log(
                f"{backend} {kind}: {result['rows']:,} rows, RSS {result['baseline_mb']:.0f} MB before, peak "
                f"{result['peak_mb']:.0f} MB (+{result['growth_mb']:.1f}), "
                f"tracemalloc {result['tracemalloc_peak_mb']:.1f} MB"
            )
            results.append((backend, result))
    print_table(
        [
            "backend",
            "export",
            "rows",
            "MB sent",
            "seconds",
            "RSS before MB",
            "peak RSS MB",
            "growth MB",
            "tracemalloc peak MB",
            f"growth < {TARGET_MB:g} MB",
        ],
        [
            (
                backend,
                r["kind"],
                r["rows"],
                r["bytes"] / 2**20,
                r["seconds"],
                r["baseline_mb"],
                r["peak_mb"],
                r["growth_mb"],
                r["tracemalloc_peak_mb"],
                "met" if r["growth_mb"] < TARGET_MB else "MISSED",
            )
            for backend, r in results
        ],
    )
    growth = max(r["growth_mb"] for _, r in results)
    peak = max(r["peak_mb"] for _, r in results)
    print(f"exports_growth_max_mb={fmt(growth)} exports_peak_rss_mb={fmt(peak)}", flush=True)


if __name__ == "__main__":
    main()
