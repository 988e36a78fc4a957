"""Dashboard and recommendation statistics over 1M gate decisions on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/stats.py [--quick]
        [--rows N] [--keep] [--repeat N] [--seed N] [--only TEXT ...] [--explain]

PostgreSQL only (the design's target: "every autonomy selector and page over 1M gate decisions under 100 ms
p95"). The data lives in a database of its own on that server (created and migrated here):
`reviewconsole_bench_stats` when DATABASE_URL names the server's `postgres` database, else
`<that name>_bench_stats`. It is generated again on every run, unless --keep finds the requested number of
gate decisions already there.

Data (generated in SQL with generate_series, INSERT … SELECT in one transaction, foreign-key triggers off; no
ORM loops): N gate decisions over the last 90 days up to now (today included), six output types of different
volumes. Each type was fully reviewed for its first 30 days, then got a threshold (0.80-0.90) with a 5% audit
rate: below it outputs go to review (weight 1), above it 5% are audit samples (review probability 0.05) and
the rest are auto-approved; 15% of outputs are forced to review by a business rule (10% high_value, 5%
flow_requested), and their verdicts are 5 points more often correct; 3% have no confidence.
Every output sent to review has a FlowRun, a PendingFeedback and a ReviewItem; a reviewer (one of 20) decides
it minutes to 20 days later (exponential, mean 8 hours), so recent ones are still pending; Decision and FieldError
rows are stored in the order they were made, as the console writes them; a verdict is correct
with a probability rising with confidence; wrong ones are edited (with FieldError rows) or rejected with a
reason. Then VACUUM ANALYZE; the autonomy rollups are built (`rollup_refresh`, timed: a full build, or with
--keep the days since the last run); then up to 300 late verdicts are recorded through `verdict_record` on
outputs of past days still pending (with --keep, those an earlier run left), so their days are stale and read
live, as between two hourly refreshes.

Measurement, after warm-up calls, for the largest type (invoice) where one is needed:
- every public function of `autonomy/selectors.py` and the entry points of `autonomy/recommendation.py`,
  called in this process. `SELECTOR_CALLS` lists them with their arguments; a public function of either
  module that it does not list is still measured when the bench knows all its required arguments by name
  (`ARGUMENTS`), and is otherwise named under the table as not measured;
- the pages and the type page's htmx fragments (`PAGE_CALLS`) and the autonomy API (`API_CALLS`), through
  Django's test Client logged in as a manager with the `manage_autonomy` permission (server time without the
  network: middleware, view, queries, templates).
Each row ends PASS or MISS against 100 ms p95. --explain prints EXPLAIN (ANALYZE, BUFFERS) of the slowest
query of every row that misses.

The last line printed is `stats_p95_max_ms=<the highest p95 over the rows>`.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import configure_named_postgres_database, django_setup, fmt, log, print_table, summarize

DB_NAME = "reviewconsole_bench_stats"
TARGET_MS = 100.0
DEFAULT_ROWS = 1_000_000
QUICK_ROWS = 200_000
SPAN_DAYS = 90
# Days each type is fully reviewed before it gets its threshold.
FULL_REVIEW_DAYS = 30
AUDIT_RATE = 0.05
REVIEWERS = 20
MANAGER = "bench_stats_manager"
MANAGE_PERM = "autonomy.manage_autonomy"
MEASURED_TYPE = "invoice"
LATE_VERDICTS = 300
# (output type, share of the outputs, threshold after the first 30 days)
TYPES = (
    ("invoice", 0.35, 0.85),
    ("receipt", 0.20, 0.80),
    ("purchase_order", 0.15, 0.88),
    ("expense_report", 0.12, 0.82),
    ("contract", 0.10, 0.90),
    ("shipping_notice", 0.08, 0.84),
)
REJECT_REASONS = ("wrong_data", "incomplete", "not_applicable", "other")
# Business rules that force a review whatever the confidence: (reason, share of all outputs).
FORCED_REASONS = (("high_value", 0.10), ("flow_requested", 0.05))
# How much more often a forced output is correct than one routed by confidence.
FORCED_ACCURACY_BONUS = 0.05


# --------------------------------------------------------------------------- data


def _tables() -> dict[str, str]:
    from reviewconsole.autonomy.models import FieldError, GateDecision
    from reviewconsole.engine.models import FlowRun, PendingFeedback
    from reviewconsole.reviews.models import Decision, ReviewEvent, ReviewItem

    return {
        "gate": GateDecision._meta.db_table,
        "field_errors": FieldError._meta.db_table,
        "runs": FlowRun._meta.db_table,
        "pending": PendingFeedback._meta.db_table,
        "items": ReviewItem._meta.db_table,
        "decisions": Decision._meta.db_table,
        "events": ReviewEvent._meta.db_table,
    }


def _types_sql() -> str:
    """The output types as a VALUES list with cumulative share bounds [lo, hi)."""
    rows, low = [], 0.0
    for index, (name, share, threshold) in enumerate(TYPES):
        high = 1.0 if index == len(TYPES) - 1 else low + share
        rows.append(f"('{name}', {low!r}, {high!r}, {threshold!r})")
        low = high
    return f"(VALUES {', '.join(rows)}) AS t(name, lo, hi, threshold)"


def _plan_sql(rows: int) -> list[str]:
    """Statements building the temporary table `plan`: one row per gate decision with everything derived from it."""
    reasons = "ARRAY[" + ", ".join(f"'{r}'" for r in REJECT_REASONS) + "]"
    forced, low = [], 0.0
    for reason, share in FORCED_REASONS:
        forced.append(
            f"(r.u_forced >= {low!r} AND r.u_forced < {low + share!r}, 'human_review', '{reason}', false, 1.0::float8)"
        )
        low += share
    forced_rules = ",\n                ".join(forced)
    forced_share = low
    return [
        f"""
        CREATE TEMP TABLE draws AS
        SELECT i,
               now() - interval '{SPAN_DAYS} days' + (i - random()) * ({SPAN_DAYS} * 86400.0 / {rows})
                   * interval '1 second' AS created_at,
               random() AS u_type, random() AS u_conf, random() AS u_null, random() AS u_forced,
               random() AS u_audit, random() AS u_delay, random() AS u_correct, random() AS u_kind
        FROM generate_series(1, {rows}) AS i
        """,
        f"""
        CREATE TEMP TABLE routed AS
        SELECT d.*, t.name AS output_type,
               CASE WHEN d.u_null < 0.03 THEN NULL
                    ELSE round((1 - 0.9 * power(d.u_conf, 3))::numeric, 3)::float8 END AS confidence,
               CASE WHEN d.created_at >= now() - interval '{SPAN_DAYS - FULL_REVIEW_DAYS} days'
                    THEN t.threshold END AS threshold
        FROM draws d JOIN {_types_sql()} ON d.u_type >= t.lo AND d.u_type < t.hi
        """,
        f"""
        CREATE TEMP TABLE plan AS
        SELECT r.i, r.output_type, r.confidence, r.threshold, r.created_at, g.route, g.reason, g.audit, g.probability,
               r.u_correct < 0.55 + 0.45 * coalesce(r.confidence, 0.8)
                   + CASE WHEN r.u_forced < {forced_share!r} THEN {FORCED_ACCURACY_BONUS} ELSE 0 END AS correct,
               r.u_kind < 0.4 AS edited,
               ({reasons})[1 + floor(r.u_kind * 4)::int] AS reject_reason,
               CASE WHEN r.u_kind < 0.2 THEN '["total_amount"]' ELSE '["vendor", "issue_date"]' END AS error_fields,
               r.created_at + least(-ln(1 - r.u_delay) * 8 * 3600, 20 * 86400) * interval '1 second' AS decided_at,
               md5('run' || r.i)::uuid AS run_id, md5('item' || r.i)::uuid AS item_id
        FROM routed r
        CROSS JOIN LATERAL (
            SELECT * FROM (VALUES
                {forced_rules},
                (r.threshold IS NULL, 'human_review', 'always_review', false, 1.0::float8),
                (r.confidence IS NULL OR r.confidence < r.threshold, 'human_review', 'low_confidence', false, 1.0),
                (r.u_audit < {AUDIT_RATE}, 'human_review', 'audit_sample', true, {AUDIT_RATE}),
                (true, 'auto_approved', '', false, {AUDIT_RATE})
            ) AS rule(applies, route, reason, audit, probability)
            WHERE rule.applies LIMIT 1
        ) g
        """,
        # A review decided in the future is still pending now.
        "UPDATE plan SET decided_at = NULL WHERE route = 'auto_approved' OR decided_at > now()",
        "CREATE INDEX ON plan (i)",
        "ANALYZE plan",
    ]


def _load_sql(tables: dict[str, str], reviewer_ids: list[int]) -> list[tuple[str, str]]:
    """(table key, INSERT … SELECT from `plan`) for every table, in foreign-key order."""
    reviewers = "ARRAY[" + ", ".join(str(pk) for pk in reviewer_ids) + "]::bigint[]"
    reviewed = "route = 'human_review'"
    return [
        (
            "runs",
            f"""INSERT INTO {tables["runs"]} (id, flow_name, status, inputs, state, result, error, traceback, attempts,
                worker, trigger, created_at, started_at, finished_at, updated_at)
            SELECT run_id, output_type || '_flow', CASE WHEN decided_at IS NULL THEN 'waiting_review' ELSE 'completed'
                END, '{{}}', '{{}}', NULL, '', '', 1, 'worker-1', 'api', created_at, created_at, decided_at,
                coalesce(decided_at, created_at)
            FROM plan WHERE {reviewed}""",
        ),
        (
            "pending",
            f"""INSERT INTO {tables["pending"]} (id, flow_uuid, method, context, state, created_at, cleared_at)
            SELECT i, run_id::text, 'review', '{{}}', '{{}}', created_at, decided_at FROM plan WHERE {reviewed}""",
        ),
        (
            "items",
            f"""INSERT INTO {tables["items"]} (id, run_id, pending_id, method, output_type, reason, confidence, message,
                output, schema, outcomes, uses_emit, status, due_at, created_at, decided_at, resumed_at)
            SELECT item_id, run_id, i, 'review', output_type, reason, confidence, '', '{{}}', NULL,
                '["approved", "rejected"]', true, CASE WHEN decided_at IS NULL THEN 'pending' ELSE 'decided' END,
                created_at + interval '1 day', created_at, decided_at, decided_at
            FROM plan WHERE {reviewed}""",
        ),
        (
            "decisions",
            f"""INSERT INTO {tables["decisions"]} (item_id, outcome, edited_output, diff, comment, reason_code, user_id,
                at, output_type, item_created_at)
            SELECT item_id, CASE WHEN correct OR edited THEN 'approved' ELSE 'rejected' END,
                CASE WHEN NOT correct AND edited THEN '{{}}'::jsonb END, '[]', '',
                CASE WHEN correct OR edited THEN '' ELSE reject_reason END, ({reviewers})[1 + i % {len(reviewer_ids)}],
                decided_at, output_type, created_at
            FROM plan WHERE {reviewed} AND decided_at IS NOT NULL
            ORDER BY decided_at""",
        ),
        (
            "gate",
            f"""INSERT INTO {tables["gate"]} (id, output_type, confidence, threshold, route, reason, forced, audit,
                review_probability, run_id, step_key, review_item_id, verdict, error_fields, reject_reason, verdict_at,
                created_at)
            SELECT i, output_type, confidence, threshold, route, reason, reason = 'high_value', audit, probability,
                CASE WHEN {reviewed} THEN run_id END, '', CASE WHEN {reviewed} THEN item_id END,
                CASE WHEN decided_at IS NULL THEN '' WHEN correct THEN 'correct' ELSE 'incorrect' END,
                CASE WHEN decided_at IS NOT NULL AND NOT correct AND edited THEN error_fields ELSE '[]' END::jsonb,
                CASE WHEN decided_at IS NOT NULL AND NOT correct AND NOT edited THEN reject_reason ELSE '' END,
                decided_at, created_at
            FROM plan""",
        ),
        (
            "field_errors",
            f"""INSERT INTO {tables["field_errors"]} (gate_decision_id, output_type, field, created_at)
            SELECT i, output_type, field, decided_at
            FROM plan CROSS JOIN LATERAL jsonb_array_elements_text(error_fields::jsonb) AS field
            WHERE decided_at IS NOT NULL AND NOT correct AND edited
            ORDER BY decided_at""",
        ),
    ]


def ensure_users_and_policies() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from reviewconsole.autonomy.models import AutonomyPolicy

    users = get_user_model().objects
    # A manager by permission, as managers are, not a superuser: the permission checks are part of the page.
    manager, _ = users.update_or_create(username=MANAGER, defaults={"is_superuser": False, "is_staff": False})
    app_label, codename = MANAGE_PERM.split(".")
    manager.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    reviewer_ids = [users.get_or_create(username=f"bench_stats_reviewer_{n}")[0].pk for n in range(REVIEWERS)]
    for name, _, threshold in TYPES:
        AutonomyPolicy.objects.update_or_create(
            output_type=name, defaults={"threshold": threshold, "audit_rate": AUDIT_RATE, "min_samples": 50}
        )
    return {"manager": manager, "reviewer_ids": reviewer_ids}


def generate(rows: int, seed: float, reviewer_ids: list[int]) -> dict[str, Any]:
    """Truncate and fill every table from SQL in one transaction; returns rows per table and seconds."""
    import psycopg

    tables = _tables()
    counts: dict[str, int] = {}
    started = time.perf_counter()
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no FK triggers: the data is consistent
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute(f"TRUNCATE {', '.join(tables.values())} CASCADE")
        cursor.execute("SELECT setseed(%s)", [seed])
        for statement in _plan_sql(rows):
            cursor.execute(statement)
        log(f"  planned in {time.perf_counter() - started:.1f}s")
        for key, statement in _load_sql(tables, reviewer_ids):
            step = time.perf_counter()
            cursor.execute(statement)
            counts[key] = cursor.rowcount
            log(f"  {tables[key]}: {cursor.rowcount:,} rows in {time.perf_counter() - step:.1f}s")
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{tables['gate']}', 'id'), (SELECT max(id) FROM {tables['gate']}))"
        )
        conn.commit()
    loaded = time.perf_counter() - started
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        for table in tables.values():
            conn.execute(f"VACUUM (ANALYZE) {table}")
    return {"counts": counts, "load_s": loaded, "vacuum_s": time.perf_counter() - started - loaded}


def ensure_data(args: argparse.Namespace, reviewer_ids: list[int]) -> dict[str, Any] | None:
    from reviewconsole.autonomy.models import GateDecision

    existing = GateDecision.objects.count()
    if args.keep and existing == args.rows:
        log(f"data already there: {existing:,} gate decisions; kept")
        return None
    log(f"generating {args.rows:,} gate decisions (found {existing:,})")
    return generate(args.rows, args.seed, reviewer_ids)


def refresh_rollups(*, rebuild: bool) -> dict[str, Any]:
    """Bring the rollups up to date as the hourly schedule would; returns its summary and seconds.

    After `generate` the rollups must be rebuilt: the data was replaced behind the services' back.
    """
    from reviewconsole.autonomy.services import rollup_refresh

    started = time.perf_counter()
    summary = rollup_refresh(rebuild=rebuild)
    return {**summary, "seconds": time.perf_counter() - started}


def late_verdicts(count: int) -> int:
    """Verdicts on pending outputs of past days, through `verdict_record`, as reviewers give them between two
    refreshes: their days are marked stale and read live. The review items themselves stay pending."""
    from django.db import transaction
    from django.utils import timezone

    from reviewconsole.autonomy.models import GateDecision
    from reviewconsole.autonomy.rollup import day_start
    from reviewconsole.autonomy.services import verdict_record
    from reviewconsole.reviews.models import Decision

    today = day_start(timezone.localdate())
    pending = (
        GateDecision.objects.filter(route="human_review", verdict="", created_at__lt=today, review_item__isnull=False)
        .select_related("review_item")
        .order_by("-created_at")[:count]
    )
    with transaction.atomic():
        for decision in pending:
            item = decision.review_item
            verdict_record(item=item, decision=Decision(item=item, outcome=item.outcomes[0]))
    return len(pending)


# --------------------------------------------------------------------------- measurement


@dataclass
class Row:
    name: str
    call: Callable[[], Any]
    times: list[float]
    queries: int = 0
    slowest: tuple[float, str] = (0.0, "")


def _selector_calls(t: str, types: list[str], since: Any) -> list[tuple[str, str, Callable[[], Any]]]:
    """(row name, function measured, call) for the autonomy selectors and recommendation entry points.

    Add a row here for a new selector whose arguments `ARGUMENTS` cannot supply by name.
    """
    from reviewconsole.autonomy import guard, recommendation, selectors
    from reviewconsole.autonomy.services import policy_ensure

    return [
        ("policies_by_type(6 types)", "policies_by_type", lambda: selectors.policies_by_type(types)),
        (
            f"gate_totals(SUMMARY, {t})",
            "gate_totals",
            lambda: selectors.gate_totals(selectors.SUMMARY, output_types=[t]),
        ),
        ("overview()", "overview", selectors.overview),
        ("trends_by_type(6 types, 30 days)", "trends_by_type", lambda: selectors.trends_by_type(types, 30)),
        (f"type_summary({t})", "type_summary", lambda: selectors.type_summary(t)),
        (f"type_summary({t}, since 30 days)", "type_summary", lambda: selectors.type_summary(t, since)),
        (f"calibration({t})", "calibration", lambda: selectors.calibration(t)),
        (f"calibration({t}, since 30 days)", "calibration", lambda: selectors.calibration(t, since)),
        (f"trend({t}, day)", "trend", lambda: selectors.trend(t, "day")),
        (f"trend({t}, week)", "trend", lambda: selectors.trend(t, "week")),
        (f"field_error_rates({t})", "field_error_rates", lambda: selectors.field_error_rates(t)),
        (f"field_error_rates({t}, since 30 days)", "field_error_rates", lambda: selectors.field_error_rates(t, since)),
        (f"reject_reason_rates({t})", "reject_reason_rates", lambda: selectors.reject_reason_rates(t)),
        (
            f"reject_reason_rates({t}, since 30 days)",
            "reject_reason_rates",
            lambda: selectors.reject_reason_rates(t, since),
        ),
        (f"queue_depth({t})", "queue_depth", lambda: selectors.queue_depth(t)),
        ("queue_depth(all types)", "queue_depth", selectors.queue_depth),
        (f"queue_health({t}, 30 days)", "queue_health", lambda: selectors.queue_health(t, since=since)),
        ("queue_health(all types, 30 days)", "queue_health", lambda: selectors.queue_health(since=since)),
        (
            f"reviewer_throughput({t}, 30 days)",
            "reviewer_throughput",
            lambda: selectors.reviewer_throughput(t, since=since),
        ),
        (
            "reviewer_throughput(all types, 30 days)",
            "reviewer_throughput",
            lambda: selectors.reviewer_throughput(since=since),
        ),
        (f"type_strata({t})", "type_strata", lambda: recommendation.type_strata(t)),
        (f"recommend({t})", "recommend", lambda: recommendation.recommend(t)),
        (f"recommend({t}, since 30 days)", "recommend", lambda: recommendation.recommend(t, since=since)),
        (f"what_if({t}, 0.85)", "what_if", lambda: recommendation.what_if(t, 0.85)),
        (f"what_if({t}, 0.855)", "what_if", lambda: recommendation.what_if(t, 0.855)),
        (f"what_if({t}, 0.7, since 30 days)", "what_if", lambda: recommendation.what_if(t, 0.7, since=since)),
        (f"guard_state({t})", "guard_state", lambda: guard.guard_state(policy_ensure(output_type=t))),
    ]


def _arguments(t: str, types: list[str], since: Any) -> dict[str, Any]:
    """Values by parameter name, for public selectors the bench does not list (see `discovered_calls`)."""
    return {"output_type": t, "output_types": types, "since": since, "threshold": 0.85, "days": 30, "period": "day"}


def discovered_calls(
    listed: set[str], arguments: dict[str, Any]
) -> tuple[list[tuple[str, Callable[[], Any]]], list[str]]:
    """Public functions of the selector and recommendation modules that `_selector_calls` does not list.

    Those about an output type (an `output_type` or `output_types` parameter) whose required parameters
    `arguments` all names are measured; the others are returned by name, to be shown as not measured
    (pure helpers over values already read, or arguments the bench cannot guess).
    """
    from reviewconsole.autonomy import recommendation, selectors

    calls: list[tuple[str, Callable[[], Any]]] = []
    skipped: list[str] = []
    for module in (selectors, recommendation):
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or function.__module__ != module.__name__ or name in listed:
                continue
            signature = inspect.signature(function)
            if "QuerySet" in str(signature.return_annotation):
                continue  # builds a query for a selector to run: measured inside that selector
            parameters = signature.parameters.values()
            required = [
                p.name for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            about_a_type = any(p.name in ("output_type", "output_types") for p in parameters)
            if about_a_type and all(name in arguments for name in required):
                kwargs = {name: arguments[name] for name in required}
                shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "since")
                calls.append((f"{name}({shown}) [found]", lambda f=function, k=kwargs: f(**k)))
            else:
                skipped.append(f"{module.__name__.rsplit('.', 1)[-1]}.{name}")
    return calls, skipped


def build_rows(manager: Any) -> tuple[list[Row], list[str]]:
    """The rows to measure, and the public selector functions left unmeasured."""
    from django.test import Client
    from django.utils import timezone

    since = timezone.now() - timedelta(days=30)
    types = [name for name, _, _ in TYPES]
    t = MEASURED_TYPE
    client = Client(SERVER_NAME="localhost")
    client.force_login(manager)

    def page(path: str, method: str = "get", body: Any = None, **headers: str) -> Callable[[], Any]:
        def call() -> Any:
            if body is None:
                response = getattr(client, method)(path, headers=headers)
            else:
                response = getattr(client, method)(
                    path, json.dumps(body), content_type="application/json", headers=headers
                )
            if response.status_code != 200:
                raise SystemExit(f"{method.upper()} {path}: HTTP {response.status_code}")
            return response

        return call

    def fragment(path: str, target: str) -> Callable[[], Any]:
        return page(path, HX_Request="true", HX_Target=target)

    type_page = f"/autonomy/{t}/"
    selector_calls = _selector_calls(t, types, since)
    found, skipped = discovered_calls({function for _, function, _ in selector_calls}, _arguments(t, types, since))
    page_calls = [
        ("page /autonomy/", page("/autonomy/")),
        (f"page {type_page}", page(type_page)),
        # The type page's htmx fragments: the what-if slider, the day/week toggle, and queue health with reviewer
        # throughput, which the page fetches once it is shown.
        (f"fragment {type_page} #what-if 0.80", fragment(f"{type_page}?threshold=0.80", "what-if")),
        (f"fragment {type_page} #trend-panel day", fragment(f"{type_page}?period=day", "trend-panel")),
        (f"fragment {type_page} #trend-panel week", fragment(f"{type_page}?period=week", "trend-panel")),
        (f"fragment {type_page} #reviewing-panel", fragment(type_page, "reviewing-panel")),
    ]
    policy = next(threshold for name, _, threshold in TYPES if name == t)
    api_calls = [
        (f"api GET /api/v1/autonomy/{t}", page(f"/api/v1/autonomy/{t}")),
        # The policy's own values: nothing changes (no history row), the answer is read as after a change.
        (
            f"api PATCH /api/v1/autonomy/{t} (no change)",
            page(f"/api/v1/autonomy/{t}", "patch", {"threshold": policy, "reason": "bench: same threshold"}),
        ),
    ]
    calls = [(name, call) for name, _, call in selector_calls] + found + page_calls + api_calls
    return [Row(name, call, []) for name, call in calls], skipped


def measure(rows: list[Row], *, warmup: int, repeat: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for row in rows:
        for number in range(warmup):
            with CaptureQueriesContext(connection) as captured:
                row.call()
            if number == warmup - 1:
                row.queries = len(captured.captured_queries)
                timed = [(float(q["time"]) * 1000, q["sql"]) for q in captured.captured_queries]
                row.slowest = max(timed, default=(0.0, ""))
        for _ in range(repeat):
            started = time.perf_counter()
            row.call()
            row.times.append((time.perf_counter() - started) * 1000)
        stats = summarize(row.times)
        log(f"  {row.name}: p50 {stats.median:.1f} ms, p95 {stats.p95:.1f} ms, {row.queries} queries")


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join(line for (line,) in cursor.fetchall())


# --------------------------------------------------------------------------- main


def database_name(url: str) -> str:
    """The bench's own database beside the one DATABASE_URL names, whose data it never touches.

    `DB_NAME` beside the server's maintenance database `postgres`, else `<name>_bench_stats`: two checkouts
    with databases of their own on one server get bench databases of their own too.
    """
    name = urlsplit(url).path.lstrip("/")
    return DB_NAME if name in ("", "postgres") else f"{name}_bench_stats"


def hold_database(name: str) -> Any:
    """Wait for any other run of this script on the same database, then hold it until this process exits.

    Two runs at once would truncate and regenerate each other's data (bench/run_all.py runs this script too).
    """
    import psycopg

    connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    if not connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [name]).fetchone()[0]:
        log("another run of bench/stats.py holds the database; waiting for it")
        connection.execute("SELECT pg_advisory_lock(hashtext(%s))", [name])
    return connection


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} gate decisions, 15 timed calls")
    parser.add_argument("--rows", type=int, default=None, help=f"gate decisions (default {DEFAULT_ROWS:,})")
    parser.add_argument("--keep", action="store_true", help="reuse the data when it has the requested row count")
    parser.add_argument("--repeat", type=int, default=None, help="timed calls per row (default 40, --quick 15)")
    parser.add_argument("--seed", type=float, default=0.42, help="PostgreSQL setseed() value in [-1, 1]")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT", help="rows whose name contains TEXT")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest query of failing rows")
    args = parser.parse_args()
    args.rows = args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    args.repeat = args.repeat or (15 if args.quick else 40)
    return args


def main() -> int:
    args = parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print(
            "bench/stats.py needs PostgreSQL: set DATABASE_URL=postgres://… (data goes to a database of its own)",
            file=sys.stderr,
        )
        return 2
    os.environ["TASKS_SYNC"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DEBUG"] = "0"
    database = database_name(os.environ["DATABASE_URL"])
    label = configure_named_postgres_database(database)
    log(f"database: {label}")
    lock = hold_database(database)
    django_setup(migrate=True)

    from django.db import connection

    users = ensure_users_and_policies()
    generation = ensure_data(args, users["reviewer_ids"])
    log("refreshing the rollups …")
    rollup = refresh_rollups(rebuild=generation is not None)
    log(f"  rolled up through {rollup['rolled_through']} in {rollup['seconds']:.1f}s")
    late = late_verdicts(LATE_VERDICTS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), current_setting('jit'), current_setting('shared_buffers')")
        version, jit, shared_buffers = cursor.fetchone()
    rows, unmeasured = build_rows(users["manager"])
    rows = [row for row in rows if not args.only or any(t in row.name for t in args.only)]
    load_before = os.getloadavg()
    log(f"measuring: 3 warm-up + {args.repeat} timed calls per row")
    measure(rows, warmup=3, repeat=args.repeat)
    load_after = os.getloadavg()

    print(f"Autonomy statistics at scale — {label}")
    print(f"{version.split(',')[0]}; shared_buffers={shared_buffers}, jit={jit}")
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before and {load_after[0]:.1f} after "
        "the measurement (other processes share the CPUs)"
    )
    if generation is None:
        print(f"data: {args.rows:,} gate decisions, kept from an earlier run")
    else:
        counts = generation["counts"]
        print(
            f"data: {counts['gate']:,} gate decisions, {counts['items']:,} review items, {counts['decisions']:,} "
            f"decisions, {counts['field_errors']:,} field errors; generated in {generation['load_s']:.1f}s "
            f"+ VACUUM ANALYZE {generation['vacuum_s']:.1f}s"
        )
    from reviewconsole.autonomy.models import GateBucketRollup, GateRollup, StaleRollupDay

    print(
        f"rollups: refresh {rollup['seconds']:.1f}s ({'full build' if rollup['rebuilt'] else 'incremental'}), "
        f"through {rollup['rolled_through']}; {GateRollup.objects.count():,} + {GateBucketRollup.objects.count():,} "
        f"rows; then {late} late verdicts left {StaleRollupDay.objects.values('output_type', 'day').distinct().count()}"
        " (type, day) pairs stale, read live"
    )
    print(f"{args.repeat} timed calls per row after 3 warm-up calls; output type {MEASURED_TYPE} where one is needed")
    print()
    worst = 0.0
    table = []
    for row in rows:
        stats = summarize(row.times)
        worst = max(worst, stats.p95)
        verdict = "PASS" if stats.p95 < TARGET_MS else "MISS"
        table.append([row.name, stats.median, stats.p95, row.queries, row.slowest[0], TARGET_MS, verdict])
    print_table(["name", "p50 ms", "p95 ms", "queries", "slowest query ms", "target ms", "verdict"], table)
    misses = [row.name for row in rows if not summarize(row.times).p95 < TARGET_MS]
    print()
    if unmeasured:
        print(f"not measured (pure, or arguments the bench cannot name): {', '.join(unmeasured)}")
    print(
        f"{len(rows) - len(misses)} of {len(rows)} rows PASS (p95 < {TARGET_MS:g} ms)"
        + (f"; MISS: {'; '.join(misses)}" if misses else "")
    )
    if args.explain:
        for row in rows:
            if row.name in misses and row.slowest[1].lstrip().upper().startswith("SELECT"):
                print(f"\n--- {row.name}: {row.slowest[0]:.1f} ms\n{row.slowest[1]}\n{explain(row.slowest[1])}")
    lock.close()
    print(f"stats_p95_max_ms={fmt(worst, 2)}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
