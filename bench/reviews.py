"""Reviewer pages at scale: the queue, the item page and the decision POST over 100k pending and 1M decided items.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/reviews.py [--quick]
        [--requests N] [--warmup N] [--regenerate] [--pending N] [--decided N] [--seed N]
        [--only TEXT ...] [--explain | --explain-all] [--database NAME]

PostgreSQL only (the design's target: "under 50 ms server time at p95, with 100k pending and 1M decided
items on PostgreSQL"). The data lives in a database of its own on that server, `reviewconsole_reviews_bench`
(created and migrated here), and is kept between runs: it is generated again only when its counts are not
the requested ones, or with --regenerate. About 3 minutes on 2 cores; --quick then measures in 1-4 minutes.

Data (no flows run): per review item a FlowRun (a few runs hold two items, the earlier one decided), a
PendingFeedback, the item itself (invoice-like output JSON of 1-2 KB with its pydantic JSON schema, six
output types of different volumes, reasons, confidences, created_at spread over 90 days and inserted in that
order, SLA deadlines from the type's policy), a linked GateDecision with the verdict, and for decided items a
Decision by one of 20 generated reviewers (approved, edited with a field diff and FieldError rows, or
rejected with a reason), plus a `created` event per item. Pending items are mostly the recent ones, with a
tail of old stragglers. Users: `bench_manager` (manager, every type) and `bench_scoped` (reviewer of two
types). Everything is written with COPY ... FREEZE in one transaction: tables truncated first, foreign-key
triggers off, indexes that back no constraint dropped during the load and built again before the commit,
values compressed with lz4 when the server has it; then VACUUM ANALYZE.

Measurement: Django's test Client in this process, logged in with force_login. The time of `client.get/post`
is server time without the network: URL routing, middleware (session and user read from the database), view,
queries, template rendering. Each scenario gets warm-up requests, whose queries are counted with
CaptureQueriesContext (queries per request, query time, the slowest query), then N timed requests without
query capture (wall time, and this process's CPU time, which tells Python work from waiting on PostgreSQL or
on a busy machine). Opening an item page claims nothing; item pages and decisions each take a different
random pending item. The search scenarios look for a word of a pending invoice's vendor (a common word: many
matches to count), among the pending items and among all of them, for its invoice number, and for a word no
item holds. During the
whole measurement `django_q.tasks.async_task` is
replaced by a no-op that only counts calls, so the decision POST times the web request alone and not the
flow resume or the autonomy check it enqueues on commit. After each POST the flash-message cookie is dropped
(a browser would show it on the next page). What the bench users wrote (decisions, verdicts, claims, events)
is reverted at the end, and at the start after an interrupted run, so the data set keeps its counts; the
queue tabs' per-type pending counts, which the services keep and these SQL writes bypass, are then set from
the items again.

--only TEXT runs the scenarios whose name contains TEXT. --explain prints EXPLAIN (ANALYZE, BUFFERS) of the
slowest SELECTs of each failing scenario (--explain-all: of every scenario). PGOPTIONS (libpq) passes server
settings to the measured connection, e.g. PGOPTIONS="-c jit=off".

The last line printed is `reviews_p95_max_ms=<the highest p95 over the scenarios>`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy as copy_module
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import BaseModel

from bench.common import configure_named_postgres_database, django_setup, fmt, log, print_table, summarize

DB_NAME = "reviewconsole_reviews_bench"
TARGET_MS = 50.0
DEFAULT_PENDING = 100_000
DEFAULT_DECIDED = 1_000_000
SPAN_DAYS = 90
POOL_SIZE = 1500
GENERATED_REVIEWERS = 20
MANAGER = "bench_manager"
SCOPED = "bench_scoped"
BENCH_USERS = (MANAGER, SCOPED)
SCOPED_TYPES = ("contract", "shipping_notice")
OUTCOMES_JSON = '["approved", "rejected"]'
REJECT_REASONS = ["wrong_data", "incomplete", "not_applicable", "other"]


# --------------------------------------------------------------------------- output types


class LineItem(BaseModel):
    description: str
    quantity: float = 1
    unit_price: float = 0
    amount: float = 0


class InvoiceData(BaseModel):
    vendor: str = ""
    invoice_number: str = ""
    invoice_date: date | None = None
    due_date: date | None = None
    currency: str = "USD"
    line_items: list[LineItem] = []
    total_amount: float = 0
    confidence: float = 0.0


class ReceiptLine(BaseModel):
    description: str
    quantity: int = 1
    amount: float = 0


class ReceiptData(BaseModel):
    merchant: str = ""
    receipt_number: str = ""
    purchase_date: date | None = None
    payment_method: Literal["card", "cash", "transfer", "other"] = "card"
    currency: str = "USD"
    items: list[ReceiptLine] = []
    tax_amount: float = 0
    total_amount: float = 0
    confidence: float = 0.0


class Address(BaseModel):
    street: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = ""


class OrderLine(BaseModel):
    sku: str
    description: str = ""
    quantity: int = 1
    unit_price: float = 0


class PurchaseOrderData(BaseModel):
    po_number: str = ""
    buyer: str = ""
    supplier: str = ""
    order_date: date | None = None
    delivery_date: date | None = None
    ship_to: Address = Address()
    lines: list[OrderLine] = []
    total_amount: float = 0
    confidence: float = 0.0


class Expense(BaseModel):
    date: str = ""
    category: Literal["travel", "meals", "lodging", "supplies", "other"] = "other"
    description: str = ""
    amount: float = 0


class ExpenseReportData(BaseModel):
    employee: str = ""
    department: str = ""
    period_start: date | None = None
    period_end: date | None = None
    currency: str = "USD"
    expenses: list[Expense] = []
    total_amount: float = 0
    approved_by_manager: bool = False
    confidence: float = 0.0


class Party(BaseModel):
    name: str
    role: str = ""


class Clause(BaseModel):
    heading: str
    summary: str = ""


class ContractData(BaseModel):
    title: str = ""
    parties: list[Party] = []
    effective_date: date | None = None
    end_date: date | None = None
    governing_law: str = ""
    auto_renewal: bool = False
    notice_period_days: int = 30
    clauses: list[Clause] = []
    total_value: float = 0
    confidence: float = 0.0


class Package(BaseModel):
    weight_kg: float = 0
    dimensions: str = ""
    contents: str = ""


class ShippingNoticeData(BaseModel):
    shipment_id: str = ""
    carrier: str = ""
    tracking_number: str = ""
    ship_date: date | None = None
    estimated_arrival: date | None = None
    origin: Address = Address()
    destination: Address = Address()
    packages: list[Package] = []
    confidence: float = 0.0


WORDS = (  # noqa: SIM905
    "alpha bracket cable desk engine filter gasket hinge insulator joint kit lamp module nozzle panel "
    "pump relay sensor spring switch valve washer adapter battery bearing bolt clamp coupling drive fan "
    "fuse gear hose lever motor nut pipe plate roller screw seal shaft sleeve socket tube wheel bracket "
    "service support license hosting consulting maintenance training freight insurance storage cleaning "
    "audit design review premium standard basic annual monthly quarterly steel copper aluminium plastic "
    "rubber glass oak brass"
).split()
COMPANY_SUFFIXES = ("GmbH", "Ltd", "Inc", "SA", "BV", "LLC", "AG", "Oy")
CITIES = ("Berlin", "Lyon", "Porto", "Leeds", "Austin", "Oslo", "Turin", "Ghent", "Graz", "Malmo", "Cork")
COUNTRIES = ("DE", "FR", "PT", "GB", "US", "NO", "IT", "BE", "AT", "SE", "IE")
CURRENCIES = ("USD", "EUR", "GBP", "CHF")


def _phrase(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize()


def _company(rng: random.Random) -> str:
    return f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS).capitalize()} {rng.choice(COMPANY_SUFFIXES)}"


def _day(rng: random.Random) -> date:
    return date(2025, 1, 1) + timedelta(days=rng.randint(0, 300))


def _address(rng: random.Random) -> dict[str, Any]:
    city = rng.randrange(len(CITIES))
    return {
        "street": f"{rng.randint(1, 250)} {rng.choice(WORDS).capitalize()} Street",
        "city": CITIES[city],
        "postal_code": f"{rng.randint(10000, 99999)}",
        "country": COUNTRIES[city],
    }


def _invoice(rng: random.Random) -> dict[str, Any]:
    lines = []
    for _ in range(rng.randint(6, 14)):
        quantity, price = rng.randint(1, 40), round(rng.uniform(2, 900), 2)
        lines.append(
            {
                "description": _phrase(rng, 3, 6),
                "quantity": float(quantity),
                "unit_price": price,
                "amount": round(quantity * price, 2),
            }
        )
    issued = _day(rng)
    return {
        "vendor": _company(rng),
        "invoice_number": f"INV-{rng.randint(10_000, 999_999)}",
        "invoice_date": issued.isoformat(),
        "due_date": (issued + timedelta(days=30)).isoformat(),
        "currency": rng.choice(CURRENCIES),
        "line_items": lines,
        "total_amount": round(sum(line["amount"] for line in lines), 2),
        "confidence": round(rng.uniform(0.3, 0.99), 2),
    }


def _receipt(rng: random.Random) -> dict[str, Any]:
    items = [
        {"description": _phrase(rng, 2, 5), "quantity": rng.randint(1, 6), "amount": round(rng.uniform(1, 120), 2)}
        for _ in range(rng.randint(8, 18))
    ]
    total = round(sum(item["amount"] for item in items), 2)
    return {
        "merchant": _company(rng),
        "receipt_number": f"R{rng.randint(1_000_000, 9_999_999)}",
        "purchase_date": _day(rng).isoformat(),
        "payment_method": rng.choice(("card", "cash", "transfer", "other")),
        "currency": rng.choice(CURRENCIES),
        "items": items,
        "tax_amount": round(total * 0.19, 2),
        "total_amount": round(total * 1.19, 2),
        "confidence": round(rng.uniform(0.3, 0.99), 2),
    }


def _purchase_order(rng: random.Random) -> dict[str, Any]:
    lines = [
        {
            "sku": f"SKU-{rng.randint(10_000, 99_999)}",
            "description": _phrase(rng, 2, 5),
            "quantity": rng.randint(1, 500),
            "unit_price": round(rng.uniform(0.5, 400), 2),
        }
        for _ in range(rng.randint(6, 14))
    ]
    ordered = _day(rng)
    return {
        "po_number": f"PO-{rng.randint(100_000, 999_999)}",
        "buyer": _company(rng),
        "supplier": _company(rng),
        "order_date": ordered.isoformat(),
        "delivery_date": (ordered + timedelta(days=rng.randint(3, 40))).isoformat(),
        "ship_to": _address(rng),
        "lines": lines,
        "total_amount": round(sum(line["quantity"] * line["unit_price"] for line in lines), 2),
        "confidence": round(rng.uniform(0.3, 0.99), 2),
    }


def _expense_report(rng: random.Random) -> dict[str, Any]:
    start = _day(rng)
    expenses = [
        {
            "date": (start + timedelta(days=rng.randint(0, 27))).isoformat(),
            "category": rng.choice(("travel", "meals", "lodging", "supplies", "other")),
            "description": _phrase(rng, 3, 7),
            "amount": round(rng.uniform(5, 600), 2),
        }
        for _ in range(rng.randint(6, 14))
    ]
    return {
        "employee": f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS).capitalize()}",
        "department": rng.choice(("Sales", "Engineering", "Finance", "Operations", "Support")),
        "period_start": start.isoformat(),
        "period_end": (start + timedelta(days=27)).isoformat(),
        "currency": rng.choice(CURRENCIES),
        "expenses": expenses,
        "total_amount": round(sum(e["amount"] for e in expenses), 2),
        "approved_by_manager": rng.random() < 0.5,
        "confidence": round(rng.uniform(0.3, 0.99), 2),
    }


def _contract(rng: random.Random) -> dict[str, Any]:
    start = _day(rng)
    return {
        "title": f"{_phrase(rng, 2, 4)} agreement",
        "parties": [{"name": _company(rng), "role": role} for role in ("supplier", "customer")],
        "effective_date": start.isoformat(),
        "end_date": (start + timedelta(days=365 * rng.randint(1, 3))).isoformat(),
        "governing_law": rng.choice(("England and Wales", "Germany", "New York", "France", "Ireland")),
        "auto_renewal": rng.random() < 0.6,
        "notice_period_days": rng.choice((30, 60, 90)),
        "clauses": [{"heading": _phrase(rng, 1, 3), "summary": _phrase(rng, 10, 18)} for _ in range(rng.randint(5, 9))],
        "total_value": round(rng.uniform(5_000, 900_000), 2),
        "confidence": round(rng.uniform(0.3, 0.99), 2),
    }


def _shipping_notice(rng: random.Random) -> dict[str, Any]:
    shipped = _day(rng)
    return {
        "shipment_id": f"SH-{rng.randint(1_000_000, 9_999_999)}",
        "carrier": rng.choice(("DHL", "UPS", "FedEx", "DPD", "GLS", "Maersk")),
        "tracking_number": f"{rng.getrandbits(64):016X}",
        "ship_date": shipped.isoformat(),
        "estimated_arrival": (shipped + timedelta(days=rng.randint(1, 20))).isoformat(),
        "origin": _address(rng),
        "destination": _address(rng),
        "packages": [
            {
                "weight_kg": round(rng.uniform(0.2, 800), 1),
                "dimensions": f"{rng.randint(10, 240)}x{rng.randint(10, 120)}x{rng.randint(10, 120)} cm",
                "contents": _phrase(rng, 3, 6),
            }
            for _ in range(rng.randint(6, 14))
        ],
        "confidence": round(rng.uniform(0.3, 0.99), 2),
    }


def _raw_text(rng: random.Random, output: dict[str, Any]) -> str:
    """The run's input: the document as text (no tabs, newlines as JSON escapes)."""
    parts = [f"{key}: {value}" for key, value in output.items() if not isinstance(value, list | dict)]
    parts += [_phrase(rng, 5, 10) for _ in range(rng.randint(2, 4))]
    return "\n".join(parts)


@dataclass(frozen=True)
class OutputType:
    name: str
    flow: str
    weight: float
    sla_minutes: int
    model: type[BaseModel]
    make: Callable[[random.Random], dict[str, Any]]

    @property
    def method(self) -> str:
        return f"review_{self.name}"


OUTPUT_TYPES = (
    OutputType("invoice", "invoice_processing", 0.35, 24 * 60, InvoiceData, _invoice),
    OutputType("receipt", "receipt_capture", 0.20, 4 * 60, ReceiptData, _receipt),
    OutputType("purchase_order", "purchase_order_intake", 0.15, 8 * 60, PurchaseOrderData, _purchase_order),
    OutputType("expense_report", "expense_audit", 0.12, 48 * 60, ExpenseReportData, _expense_report),
    OutputType("contract", "contract_review", 0.10, 72 * 60, ContractData, _contract),
    OutputType("shipping_notice", "shipment_tracking", 0.08, 2 * 60, ShippingNoticeData, _shipping_notice),
)
REASONS = ("low_confidence", "high_value", "always_review", "audit_sample", "flow_requested")
REASON_WEIGHTS = (0.55, 0.10, 0.10, 0.15, 0.10)


def _edit(rng: random.Random, output: dict[str, Any]) -> dict[str, Any]:
    """A reviewer's correction: one or two fields changed."""
    edited = copy_module.deepcopy(output)
    for key in rng.sample([k for k, v in output.items() if not isinstance(v, list | dict | bool)], 2)[
        : rng.randint(1, 2)
    ]:
        value = edited[key]
        edited[key] = round(value * 1.1 + 1, 2) if isinstance(value, int | float) else f"{value} (corrected)"
    lists = [k for k, v in output.items() if isinstance(v, list) and v]
    if lists and rng.random() < 0.5:
        row = rng.choice(edited[lists[0]])
        key = next((k for k, v in row.items() if isinstance(v, str)), None)
        if key is not None:
            row[key] = f"{row[key]} (corrected)"
    return edited


# --------------------------------------------------------------------------- COPY text format


def _j(value: Any) -> str:
    """JSON for a COPY text field (json.dumps escapes control characters; backslashes are doubled)."""
    return json.dumps(value).replace("\\", "\\\\")


def _copy_text(text: str) -> str:
    """Text for a COPY text field."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


NULL = "\\N"


# --------------------------------------------------------------------------- data set


@dataclass
class Pools:
    """Per output type: pre-serialized outputs, their edits and diffs, run inputs, and the schema."""

    outputs: list[list[str]] = field(default_factory=list)
    edits: list[list[tuple[str, str, str]]] = field(default_factory=list)  # (edited_output, diff, error_fields)
    changed: list[list[list[str]]] = field(default_factory=list)
    inputs: list[list[str]] = field(default_factory=list)
    # What the item's creation stores for the queue's rows and search (`reviews.services._checked`).
    summaries: list[list[str]] = field(default_factory=list)
    search_texts: list[list[str]] = field(default_factory=list)
    schemas: list[str] = field(default_factory=list)
    output_bytes: list[int] = field(default_factory=list)


def build_pools(rng: random.Random, size: int) -> Pools:
    from reviewconsole.engine.summaries import summarize
    from reviewconsole.reviews.diff import changed_fields, field_diff
    from reviewconsole.reviews.search import search_text

    pools = Pools()
    for kind in OUTPUT_TYPES:
        outputs, edits, changed, inputs, summaries, texts = [], [], [], [], [], []
        for _ in range(size):
            output = kind.make(rng)
            edited = _edit(rng, output)
            diff = field_diff(output, edited)
            fields = changed_fields(diff)
            outputs.append(_j(output))
            edits.append((_j(edited), _j(diff), _j(fields)))
            changed.append(fields)
            run_inputs = {"document": _raw_text(rng, output)}
            inputs.append(_j(run_inputs))
            summary = summarize(kind.name, output)
            summaries.append(_j(summary))
            texts.append(_copy_text(search_text(summary=summary, output=output, inputs=run_inputs)))
            pools.output_bytes.append(len(outputs[-1]))
        pools.outputs.append(outputs)
        pools.summaries.append(summaries)
        pools.search_texts.append(texts)
        pools.edits.append(edits)
        pools.changed.append(changed)
        pools.inputs.append(inputs)
        pools.schemas.append(_j(kind.model.model_json_schema()))
    return pools


class DataSet:
    """The planned rows, generated deterministically from the seed, in created_at order."""

    def __init__(self, *, pending: int, decided: int, seed: int, reviewer_ids: list[int]) -> None:
        self.pending_count = pending
        self.decided_count = decided
        self.n = pending + decided
        self.rng = random.Random(seed)
        self.reviewer_ids = reviewer_ids
        self.now = time.time()
        self.pools = build_pools(self.rng, POOL_SIZE)
        self._plan()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _plan(self) -> None:
        rng, n = self.rng, self.n
        start = self.now - SPAN_DAYS * 86400
        step = (SPAN_DAYS * 86400 - 600) / max(n, 1)
        self.created = [start + (i + rng.random()) * step for i in range(n)]
        # Pending: 85% among the most recent items, the rest stragglers of any age.
        self.is_pending = bytearray(n)
        recent = min(n, int(self.pending_count * 1.7))
        old = n - recent
        stragglers = min(old, self.pending_count - int(self.pending_count * 0.85))
        for i in rng.sample(range(old, n), self.pending_count - stragglers):
            self.is_pending[i] = 1
        for i in rng.sample(range(old), stragglers):
            self.is_pending[i] = 1
        self.kind = rng.choices(range(len(OUTPUT_TYPES)), weights=[t.weight for t in OUTPUT_TYPES], k=n)
        self.reason = rng.choices(range(len(REASONS)), weights=REASON_WEIGHTS, k=n)
        self.pool_index = [rng.randrange(POOL_SIZE) for _ in range(n)]
        self.item_ids = [self._uuid() for _ in range(n)]
        # Runs: one per item, but 5% of items continue the run of the item before (which is decided).
        self.run_of: list[int] = []
        self.run_ids: list[str] = []
        self.run_first: list[int] = []
        self.run_pending = bytearray()
        self.step_no = bytearray(n)
        for i in range(n):
            if i and not self.is_pending[i - 1] and self.step_no[i - 1] == 1 and rng.random() < 0.05:
                run = self.run_of[i - 1]
                self.kind[i] = self.kind[i - 1]
                self.step_no[i] = 2
            else:
                run = len(self.run_ids)
                self.run_ids.append(self._uuid())
                self.run_first.append(i)
                self.run_pending.append(0)
                self.step_no[i] = 1
            self.run_of.append(run)
            if self.is_pending[i]:
                self.run_pending[run] = 1
        self.confidence: list[float | None] = []
        for i in range(n):
            reason = REASONS[self.reason[i]]
            if reason == "low_confidence":
                value: float | None = rng.uniform(0.05, 0.85)
            elif reason == "audit_sample":
                value = rng.uniform(0.85, 0.99)
            elif reason == "flow_requested" and rng.random() < 0.5:
                value = None
            else:
                value = rng.uniform(0.3, 0.99)
            self.confidence.append(value)
        # Decisions: minutes to days after creation; 80% approved, 8% edited, 12% rejected.
        self.decided_at = [0.0] * n
        self.outcome = bytearray(n)
        for i in range(n):
            if not self.is_pending[i]:
                delay = min(rng.expovariate(1 / (8 * 3600)), 20 * 86400)
                self.decided_at[i] = min(self.created[i] + 30 + delay, self.now - 60)
                roll = rng.random()
                self.outcome[i] = 0 if roll < 0.80 else 1 if roll < 0.88 else 2
        self.created_s = [_ts(t) for t in self.created]
        self.decided_s = [_ts(t) if t else NULL for t in self.decided_at]

    # ---------------------------------------------------------------- rows

    def flow_runs(self) -> Iterator[str]:
        for run, first in enumerate(self.run_first):
            kind = OUTPUT_TYPES[self.kind[first]]
            created = self.created[first] - 2
            waiting = self.run_pending[run]
            last = first + 1 if first + 1 < self.n and self.run_of[first + 1] == run else first
            if waiting:
                status, result, finished, updated = "waiting_review", NULL, NULL, _ts(self.created[last])
            else:
                status, result = "completed", '{"stage": "approved", "reviewed": true}'
                finished = _ts(self.decided_at[last] + 1)
                updated = finished
            state = f'{{"id": "{self.run_ids[run]}", "stage": "extracted"}}'
            inputs = self.pools.inputs[self.kind[first]][self.pool_index[first]]
            yield (
                f"{self.run_ids[run]}\t{kind.flow}\t{status}\t{inputs}\t{state}\t{result}\t\t\t1\t{NULL}\tworker-1"
                f"\tapi\t{_ts(created)}\t{_ts(created + 0.05)}\t{finished}\t{updated}\t{NULL}\n"
            )

    FLOW_RUN_COLUMNS = (
        "id, flow_name, status, inputs, state, result, error, traceback, attempts, lease_expires_at, worker, "
        "trigger, created_at, started_at, finished_at, updated_at, created_by_id"
    )

    def pending_feedback(self) -> Iterator[str]:
        for i in range(self.n):
            kind = OUTPUT_TYPES[self.kind[i]]
            run_id = self.run_ids[self.run_of[i]]
            context = (
                f'{{"flow_id": "{run_id}", "flow_class": "{kind.flow}", "method_name": "{kind.method}", '
                f'"message": "Check the extracted {kind.name} against the original.", '
                f'"emit": ["approved", "rejected"], "metadata": {{"review_console": {{"output_type": '
                f'"{kind.name}", "reason": "{REASONS[self.reason[i]]}"}}}}}}'
            )
            yield (
                f'{i + 1}\t{run_id}\t{kind.method}\t{context}\t{{"id": "{run_id}"}}'
                f"\t{self.created_s[i]}\t{self.decided_s[i]}\n"
            )

    PENDING_FEEDBACK_COLUMNS = "id, flow_uuid, method, context, state, created_at, cleared_at"

    def review_items(self) -> Iterator[str]:
        for i in range(self.n):
            kind_index = self.kind[i]
            kind = OUTPUT_TYPES[kind_index]
            confidence = self.confidence[i]
            pending = self.is_pending[i]
            due = _ts(self.created[i] + kind.sla_minutes * 60)
            resumed = NULL if pending else _ts(self.decided_at[i] + 0.5)
            yield (
                f"{self.item_ids[i]}\t{self.run_ids[self.run_of[i]]}\t{i + 1}\t{kind.method}\t{kind.name}"
                f"\t{REASONS[self.reason[i]]}\t{NULL if confidence is None else f'{confidence:.3f}'}"
                f"\tCheck the extracted {kind.name} against the original."
                f"\t{self.pools.outputs[kind_index][self.pool_index[i]]}\t{self.pools.schemas[kind_index]}"
                f"\t{OUTCOMES_JSON}\tt\t{'pending' if pending else 'decided'}\t{NULL}\t{NULL}\t{due}\t{NULL}"
                f"\t{self.created_s[i]}\t{self.decided_s[i]}\t{resumed}"
                f"\t{self.pools.summaries[kind_index][self.pool_index[i]]}"
                f"\t{self.pools.search_texts[kind_index][self.pool_index[i]]}\t[]\t0\t0\t{{}}\n"
            )

    REVIEW_ITEM_COLUMNS = (
        "id, run_id, pending_id, method, output_type, reason, confidence, message, output, schema, outcomes, "
        "uses_emit, status, claimed_by_id, claim_expires_at, due_at, expires_at, created_at, decided_at, resumed_at, "
        "summary, search_text, findings, finding_count, error_count, source_spans"
    )

    def _reviewer(self, i: int) -> int:
        return self.reviewer_ids[i % len(self.reviewer_ids)]

    def decisions(self) -> Iterator[str]:
        number = 0
        for i in range(self.n):
            if self.is_pending[i]:
                continue
            number += 1
            outcome = self.outcome[i]
            if outcome == 0:
                body = f"approved\t{NULL}\t[]\t\t"
            elif outcome == 1:
                edited, diff, _ = self.pools.edits[self.kind[i]][self.pool_index[i]]
                body = f"approved\t{edited}\t{diff}\tCorrected against the source document.\t"
            else:
                reason = REJECT_REASONS[i % len(REJECT_REASONS)]
                body = f"rejected\t{NULL}\t[]\tDoes not match the source document.\t{reason}"
            yield (
                f"{number}\t{self.item_ids[i]}\t{body}\t{self._reviewer(i)}\t{self.decided_s[i]}"
                f"\t{OUTPUT_TYPES[self.kind[i]].name}\t{self.created_s[i]}\t\n"
            )

    DECISION_COLUMNS = ", ".join(
        (
            "id, item_id, outcome, edited_output, diff, comment, reason_code, user_id, at",
            "output_type, item_created_at, mark",
        )
    )

    def gate_decisions(self) -> Iterator[str]:
        for i in range(self.n):
            kind_index = self.kind[i]
            reason = REASONS[self.reason[i]]
            confidence = self.confidence[i]
            audit = reason == "audit_sample"
            if self.is_pending[i]:
                verdict, fields, reject, verdict_at = "", "[]", "", NULL
            else:
                outcome = self.outcome[i]
                verdict = "correct" if outcome == 0 else "incorrect"
                fields = self.pools.edits[kind_index][self.pool_index[i]][2] if outcome == 1 else "[]"
                reject = REJECT_REASONS[i % len(REJECT_REASONS)] if outcome == 2 else ""
                verdict_at = self.decided_s[i]
            yield (
                f"{i + 1}\t{OUTPUT_TYPES[kind_index].name}\t{NULL if confidence is None else f'{confidence:.3f}'}"
                f"\t0.85\thuman_review\t{reason}\t{'t' if audit else 'f'}\t{0.05 if audit else 1.0}"
                f"\tvalidate:{self.step_no[i]}\t{verdict}\t{fields}\t{reject}\t{verdict_at}"
                f"\t{_ts(self.created[i] - 0.01)}\t{self.item_ids[i]}\t{self.run_ids[self.run_of[i]]}\tf\t\t\tf\tf\n"
            )

    GATE_DECISION_COLUMNS = (
        "id, output_type, confidence, threshold, route, reason, audit, review_probability, step_key, verdict, "
        "error_fields, reject_reason, verdict_at, created_at, review_item_id, run_id, forced, flow_version, model, "
        "marked, excluded"
    )

    def field_errors(self) -> Iterator[str]:
        for i in range(self.n):
            if self.is_pending[i] or self.outcome[i] != 1:
                continue
            name = OUTPUT_TYPES[self.kind[i]].name
            for field_name in self.pools.changed[self.kind[i]][self.pool_index[i]]:
                yield f"{i + 1}\t{name}\t{field_name}\t{self.decided_s[i]}\t\n"

    FIELD_ERROR_COLUMNS = "gate_decision_id, output_type, field, created_at, flow_version"

    def events(self) -> Iterator[str]:
        # Only `created` events: the measured pages read the events of pending items alone.
        for i in range(self.n):
            reason = REASONS[self.reason[i]]
            yield f'created\t{{"reason": "{reason}"}}\t{self.created_s[i]}\t{self.item_ids[i]}\t{NULL}\n'

    EVENT_COLUMNS = "kind, detail, at, item_id, user_id"


def _copy_rows(cursor: Any, table: str, columns: str, rows: Iterable[str], chunk: int = 1000) -> int:
    count = 0
    buffer: list[str] = []
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FREEZE)") as copy:
        for line in rows:
            buffer.append(line)
            if len(buffer) >= chunk:
                copy.write("".join(buffer))
                count += len(buffer)
                buffer.clear()
        if buffer:
            copy.write("".join(buffer))
            count += len(buffer)
    return count


def _tables() -> dict[str, str]:
    from reviewconsole.autonomy.models import FieldError, GateDecision
    from reviewconsole.engine.models import FlowRun, PendingFeedback
    from reviewconsole.reviews.models import Decision, ReviewEvent, ReviewItem

    return {
        "runs": FlowRun._meta.db_table,
        "pending": PendingFeedback._meta.db_table,
        "items": ReviewItem._meta.db_table,
        "decisions": Decision._meta.db_table,
        "gate": GateDecision._meta.db_table,
        "field_errors": FieldError._meta.db_table,
        "events": ReviewEvent._meta.db_table,
    }


def _psycopg_url() -> str:
    return os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")


def _secondary_indexes(cursor: Any, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = %s::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        [table],
    )
    return list(cursor.fetchall())


def load(data: DataSet) -> dict[str, Any]:
    """COPY every table in one transaction, after truncating them; returns rows and seconds per table.

    Indexes that back no constraint are dropped for the load and built again at the end (inside the same
    transaction, so an interrupted load leaves the schema as it was). Values are compressed with lz4 when the
    server has it: pglz costs about a third more server CPU on this data, and only the item page reads one
    compressed value per request.
    """
    import psycopg

    tables = _tables()
    done: dict[str, Any] = {}
    with psycopg.connect(_psycopg_url()) as conn, conn.cursor() as cursor:
        try:
            cursor.execute("SET session_replication_role = replica")  # no FK triggers: the data is consistent
        except psycopg.Error:
            conn.rollback()
            log("could not turn foreign-key triggers off (needs superuser); loading with them on")
        try:
            with conn.transaction():
                cursor.execute("SET default_toast_compression = 'lz4'")
            done["compression"] = "lz4"
        except psycopg.Error:
            done["compression"] = "pglz"
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(f"TRUNCATE {', '.join(tables.values())} CASCADE")
        indexes = [index for table in tables.values() for index in _secondary_indexes(cursor, table)]
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        steps = (
            ("runs", DataSet.FLOW_RUN_COLUMNS, data.flow_runs),
            ("pending", DataSet.PENDING_FEEDBACK_COLUMNS, data.pending_feedback),
            ("items", DataSet.REVIEW_ITEM_COLUMNS, data.review_items),
            ("decisions", DataSet.DECISION_COLUMNS, data.decisions),
            ("gate", DataSet.GATE_DECISION_COLUMNS, data.gate_decisions),
            ("field_errors", DataSet.FIELD_ERROR_COLUMNS, data.field_errors),
            ("events", DataSet.EVENT_COLUMNS, data.events),
        )
        for key, columns, rows in steps:
            started = time.perf_counter()
            count = _copy_rows(cursor, tables[key], columns, rows())
            done[key] = (count, time.perf_counter() - started)
            log(f"  {tables[key]}: {count:,} rows in {done[key][1]:.1f}s")
        started = time.perf_counter()
        for _, statement in indexes:
            cursor.execute(statement)
        done["index_s"] = time.perf_counter() - started
        log(f"  {len(indexes)} secondary indexes built in {done['index_s']:.1f}s")
        for key in ("pending", "decisions", "gate"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{tables[key]}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {tables[key]}), false)"
            )
        conn.commit()
    return done


def vacuum_analyze() -> float:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(_psycopg_url(), autocommit=True) as conn:
        for table in _tables().values():
            conn.execute(f"VACUUM (ANALYZE) {table}")
    return time.perf_counter() - started


# --------------------------------------------------------------------------- users and policies


def ensure_users_and_policies() -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from reviewconsole.autonomy.models import AutonomyPolicy
    from reviewconsole.reviews.models import ReviewerScope
    from reviewconsole.reviews.roles import role_group

    user_model = get_user_model()
    manager_group, reviewer_group = role_group("manager"), role_group("reviewer")
    manager, _ = user_model.objects.get_or_create(username=MANAGER)
    manager.groups.add(manager_group)
    scoped, _ = user_model.objects.get_or_create(username=SCOPED)
    scoped.groups.add(reviewer_group)
    ReviewerScope.objects.filter(user=scoped).exclude(output_type__in=SCOPED_TYPES).delete()
    for name in SCOPED_TYPES:
        ReviewerScope.objects.get_or_create(user=scoped, output_type=name)
    reviewers = []
    for number in range(1, GENERATED_REVIEWERS + 1):
        user, _ = user_model.objects.get_or_create(username=f"gen_reviewer_{number:02d}")
        user.groups.add(reviewer_group)
        reviewers.append(user.pk)
    for kind in OUTPUT_TYPES:
        AutonomyPolicy.objects.update_or_create(
            output_type=kind.name, defaults={"threshold": 0.85, "sla_minutes": kind.sla_minutes}
        )
    return {
        "manager": user_model.objects.get(pk=manager.pk),
        "scoped": user_model.objects.get(pk=scoped.pk),
        "reviewer_ids": reviewers,
    }


# --------------------------------------------------------------------------- bench writes


def revert_bench_writes() -> dict[str, int]:
    """Undo what the bench users did: their decisions (item back to pending, verdict cleared), claims, events."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from reviewconsole.reviews.pending_counts import pending_counts_recount

    tables = _tables()
    ids = list(get_user_model().objects.filter(username__in=BENCH_USERS).values_list("pk", flat=True))
    if not ids:
        return {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH d AS (DELETE FROM {tables["decisions"]} WHERE user_id = ANY(%s) RETURNING item_id),
                 g AS (UPDATE {tables["gate"]} SET verdict = '', error_fields = '[]', reject_reason = '',
                              verdict_at = NULL
                       WHERE review_item_id IN (SELECT item_id FROM d) RETURNING id),
                 f AS (DELETE FROM {tables["field_errors"]} WHERE gate_decision_id IN (SELECT id FROM g))
            UPDATE {tables["items"]} SET status = 'pending', decided_at = NULL, resumed_at = NULL
            WHERE id IN (SELECT item_id FROM d)
            """,
            [ids],
        )
        decisions = cursor.rowcount
        cursor.execute(
            f"UPDATE {tables['items']} SET claimed_by_id = NULL, claim_expires_at = NULL WHERE claimed_by_id = ANY(%s)",
            [ids],
        )
        claims = cursor.rowcount
        cursor.execute(f"DELETE FROM {tables['events']} WHERE user_id = ANY(%s)", [ids])
        events = cursor.rowcount
    pending_counts_recount()
    return {"decisions": decisions, "claims": claims, "events": events}


def current_counts() -> dict[str, int]:
    from reviewconsole.autonomy.models import GateDecision
    from reviewconsole.reviews.models import Decision, ReviewItem

    return {
        "pending": ReviewItem.objects.filter(status="pending").count(),
        "items": ReviewItem.objects.count(),
        "decisions": Decision.objects.count(),
        "gate": GateDecision.objects.count(),
    }


def ensure_data(args: argparse.Namespace, reviewer_ids: list[int]) -> dict[str, Any]:
    from reviewconsole.reviews.pending_counts import pending_counts_recount

    wanted = {
        "pending": args.pending,
        "items": args.pending + args.decided,
        "decisions": args.decided,
        "gate": args.pending + args.decided,
    }
    counts = current_counts()
    if counts == wanted and not args.regenerate:
        log(f"data already there: {counts['pending']:,} pending, {counts['decisions']:,} decided; not regenerated")
        return {"generated": False, "seconds": None}
    log(f"generating {args.pending:,} pending and {args.decided:,} decided items (found {counts})")
    started = time.perf_counter()
    data = DataSet(pending=args.pending, decided=args.decided, seed=args.seed, reviewer_ids=reviewer_ids)
    planned = time.perf_counter() - started
    average = sum(data.pools.output_bytes) / len(data.pools.output_bytes)
    log(f"  planned in {planned:.1f}s; output JSON {average:.0f} bytes on average")
    tables = load(data)
    pending_counts_recount()
    loaded = time.perf_counter() - started
    log(f"  loaded in {loaded - planned:.1f}s; VACUUM ANALYZE …")
    vacuum = vacuum_analyze()
    total = time.perf_counter() - started
    log(f"  vacuum analyze {vacuum:.1f}s; generation total {total:.1f}s")
    return {
        "generated": True,
        "seconds": total,
        "plan_s": planned,
        "copy_s": loaded - planned,
        "vacuum_s": vacuum,
        "rows": sum(value[0] for value in tables.values() if isinstance(value, tuple)),
        "index_s": tables["index_s"],
        "compression": tables["compression"],
        "output_bytes": average,
    }


# --------------------------------------------------------------------------- measurement


@dataclass
class Scenario:
    name: str
    user: str
    method: str
    # request number → (path, POST data or GET query)
    make: Callable[[int], tuple[str, dict[str, Any]]]
    expect: int
    after: Callable[[Any], None] | None = None


@dataclass
class Result:
    scenario: Scenario
    times: list[float]
    cpu: list[float]  # this process's CPU time per timed request (Python: view, ORM, templates)
    queries: list[int]
    db_ms: list[float]  # sum of the query times of each query-counted request
    slowest: list[tuple[float, str]]


def _random_pending(
    count: int, *, output_type: str = "", exclude: set[str] | None = None, reason: str = ""
) -> list[str]:
    from reviewconsole.reviews.models import ReviewItem

    items = ReviewItem.objects.filter(status="pending", claimed_by__isnull=True)
    if output_type:
        items = items.filter(output_type=output_type)
    if reason:
        items = items.filter(reason=reason)
    ids = [str(pk) for pk in items.order_by("?").values_list("id", flat=True)[: count + len(exclude or ())]]
    ids = [pk for pk in ids if pk not in (exclude or set())][:count]
    if len(ids) < count:
        raise SystemExit(f"only {len(ids)} unclaimed pending items{f' of {output_type}' if output_type else ''}")
    return ids


def build_scenarios(total: int) -> list[Scenario]:
    from reviewconsole.reviews.models import ReviewItem

    queue = "/reviews/"
    pending_invoices = ReviewItem.objects.filter(status="pending", output_type="invoice").count()
    last_invoice_page = max(1, math.ceil(pending_invoices / 50))
    item_ids = _random_pending(total)
    typed_ids = _random_pending(total, output_type="invoice", exclude=set(item_ids))
    # Low confidence: a high-value item's approval needs a tick (and four eyes), which the POST does not give.
    decide_ids = _random_pending(total, exclude=set(item_ids) | set(typed_ids), reason="low_confidence")

    def get(path: str, query: dict[str, Any] | None = None) -> Callable[[int], tuple[str, dict[str, Any]]]:
        return lambda _i: (path, dict(query or {}))

    def drop_messages(client: Any) -> None:
        client.cookies.pop("messages", None)

    found = [
        field["value"]
        for field in ReviewItem.objects.filter(status="pending", output_type="invoice").values_list(
            "summary", flat=True
        )[:1][0]
        if field.get("found")
    ]
    word = found[0].split()[0] if found else "invoice"
    number = found[1] if len(found) > 1 else "inv"
    in_list = {"list": "type=invoice&sort=confidence"}

    return [
        Scenario("queue: first page", MANAGER, "get", get(queue), 200),
        Scenario("queue: type=invoice", MANAGER, "get", get(queue, {"type": "invoice"}), 200),
        Scenario(
            "queue: reason=low_confidence, conf 0.3-0.6",
            MANAGER,
            "get",
            get(queue, {"reason": "low_confidence", "conf_min": "0.3", "conf_max": "0.6"}),
            200,
        ),
        Scenario("queue: page 1000 (offset 49,950)", MANAGER, "get", get(queue, {"page": "1000"}), 200),
        Scenario(
            f"queue: type=invoice, last page ({last_invoice_page})",
            MANAGER,
            "get",
            get(queue, {"type": "invoice", "page": str(last_invoice_page)}),
            200,
        ),
        Scenario("queue: scoped reviewer (2 types)", SCOPED, "get", get(queue), 200),
        Scenario("queue: sort=lowest confidence", MANAGER, "get", get(queue, {"sort": "confidence"}), 200),
        Scenario("queue: sort=highest confidence", MANAGER, "get", get(queue, {"sort": "-confidence"}), 200),
        Scenario("queue: status=decided (1M)", MANAGER, "get", get(queue, {"status": "decided"}), 200),
        Scenario(f"queue: search q={word}", MANAGER, "get", get(queue, {"q": word}), 200),
        Scenario(f"queue: search q={word}, any status", MANAGER, "get", get(queue, {"q": word, "status": "all"}), 200),
        Scenario(
            f"queue: search q={number}, any status", MANAGER, "get", get(queue, {"q": number, "status": "all"}), 200
        ),
        Scenario("queue: search, no match", MANAGER, "get", get(queue, {"q": "zzqx-nothing"}), 200),
        Scenario("item page", MANAGER, "get", lambda i: (f"/reviews/{item_ids[i]}/", {}), 200),
        Scenario(
            "item page in a list (invoices, lowest confidence first)",
            MANAGER,
            "get",
            lambda i: (f"/reviews/{typed_ids[i]}/", in_list),
            200,
        ),
        Scenario(
            "decision POST (approve)",
            MANAGER,
            "post",
            lambda i: (f"/reviews/{decide_ids[i]}/decide/", {"outcome": "approved"}),
            302,
            after=drop_messages,
        ),
    ]


def run_scenarios(scenarios: list[Scenario], *, warmup: int, requests: int, users: dict[str, Any]) -> list[Result]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    clients = {}
    for name, user in ((MANAGER, users["manager"]), (SCOPED, users["scoped"])):
        client = Client(SERVER_NAME="localhost")
        client.force_login(user)
        clients[name] = client

    results = []
    for scenario in scenarios:
        client = clients[scenario.user]
        call = getattr(client, scenario.method)

        def request(number: int, scenario: Scenario = scenario, client: Any = client, call: Any = call) -> None:
            path, data = scenario.make(number)
            response = call(path, data)
            if response.status_code != scenario.expect:
                body = response.content[:600].decode(errors="replace")
                raise SystemExit(f"{scenario.name}: HTTP {response.status_code}, expected {scenario.expect}\n{body}")
            if scenario.after is not None:
                scenario.after(client)

        queries, db_ms, slowest = [], [], []
        for number in range(warmup):
            with CaptureQueriesContext(connection) as captured:
                request(number)
            queries.append(len(captured.captured_queries))
            if number >= warmup // 2:  # the warm half: caches filled, modules imported
                timed = [(float(q["time"]) * 1000, q["sql"]) for q in captured.captured_queries]
                db_ms.append(sum(ms for ms, _ in timed))
                slowest.extend(timed)
        times, cpu = [], []
        for number in range(warmup, warmup + requests):
            started, started_cpu = time.perf_counter(), time.process_time()
            request(number)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        slowest.sort(key=lambda pair: pair[0], reverse=True)
        results.append(Result(scenario, times, cpu, queries, db_ms, slowest))
        stats = summarize(times)
        log(f"  {scenario.name}: p50 {stats.median:.1f} ms, p95 {stats.p95:.1f} ms, {max(queries)} queries")
    return results


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def _queries_cell(queries: list[int]) -> str:
    low, high = min(queries), max(queries)
    return str(low) if low == high else f"{low}-{high}"


def _short_sql(sql: str, width: int = 110) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="50 timed requests per scenario instead of 200")
    parser.add_argument("--requests", type=int, default=None, help="timed requests per scenario")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up (query-counted) requests per scenario")
    parser.add_argument("--pending", type=int, default=DEFAULT_PENDING, help="pending items (default 100,000)")
    parser.add_argument("--decided", type=int, default=DEFAULT_DECIDED, help="decided items (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database", default=DB_NAME, help=f"database on the DATABASE_URL server for the data (default {DB_NAME})"
    )
    parser.add_argument("--regenerate", action="store_true", help="generate the data again even if it is there")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest SELECTs of failing rows")
    parser.add_argument("--explain-all", action="store_true", help="… of every scenario")
    parser.add_argument(
        "--only", action="append", default=[], metavar="TEXT", help="run only the scenarios whose name contains TEXT"
    )
    args = parser.parse_args()
    args.requests = args.requests or (50 if args.quick else 200)
    args.warmup = args.warmup or (8 if args.quick else 20)
    return args


def main() -> int:
    args = parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
        print(
            "bench/reviews.py needs PostgreSQL: set DATABASE_URL=postgres://USER@HOST:PORT/ANY_DB (the data goes "
            f"to the database named by --database (default {DB_NAME}) on that server, created if missing).",
            file=sys.stderr,
        )
        return 2
    os.environ["TASKS_SYNC"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DEBUG"] = "0"
    label = configure_named_postgres_database(args.database)
    log(f"database: {label}")
    django_setup(migrate=True)

    import logging
    from unittest import mock

    from django.db import connection

    # The data is written with SQL, so the recount that follows always corrects the pending counts: its
    # warning is meant for a console where that should not happen.
    logging.getLogger("reviewconsole.reviews.pending_counts").setLevel(logging.ERROR)
    users = ensure_users_and_policies()
    reverted = revert_bench_writes()
    if any(reverted.values()):
        log(f"reverted earlier bench writes: {reverted}")
    generation = ensure_data(args, users["reviewer_ids"])

    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), current_setting('jit'), current_setting('shared_buffers')")
        version, jit, shared_buffers = cursor.fetchone()
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", [_tables()["items"]])
        (items_size,) = cursor.fetchone()

    enqueued: list[str] = []

    def no_task(func: Any, *args: Any, **kwargs: Any) -> str:
        enqueued.append(str(func))
        return "bench-noop"

    log(f"measuring: {args.warmup} warm-up + {args.requests} timed requests per scenario")
    load_before = os.getloadavg()
    total = args.warmup + args.requests
    try:
        with mock.patch("django_q.tasks.async_task", no_task):
            scenarios = [s for s in build_scenarios(total) if not args.only or any(t in s.name for t in args.only)]
            results = run_scenarios(scenarios, warmup=args.warmup, requests=args.requests, users=users)
    finally:
        reverted = revert_bench_writes()
        log(f"reverted bench writes: {reverted}")

    counts = current_counts()
    print(f"Review pages at scale — {label}")
    print(f"{version.split(',')[0]}; shared_buffers={shared_buffers}, jit={jit}")
    load_after = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before and {load_after[0]:.1f} after "
        "the measurement (other processes share the CPUs: compare python cpu with p50)"
    )
    print(
        f"data: {counts['pending']:,} pending + {counts['decisions']:,} decided items, "
        f"{len(OUTPUT_TYPES)} output types; review items table {items_size}"
    )
    if generation["generated"]:
        print(
            f"generation: {generation['seconds']:.1f}s ({generation['rows']:,} rows: plan {generation['plan_s']:.1f}s, "
            f"COPY {generation['copy_s']:.1f}s incl. index builds {generation['index_s']:.1f}s, VACUUM ANALYZE "
            f"{generation['vacuum_s']:.1f}s; {generation['compression']} compression); "
            f"output JSON {generation['output_bytes']:.0f} B avg"
        )
    else:
        print("generation: skipped, data already there (--regenerate to force)")
    print(
        f"server time = Django test Client in-process, {args.requests} timed requests per scenario after "
        f"{args.warmup} warm-up (query-counted) ones; django_q async_task patched to a no-op "
        f"({len(enqueued)} tasks not enqueued)"
    )
    print()
    rows = []
    worst = 0.0
    for result in results:
        stats = summarize(result.times)
        worst = max(worst, stats.p95)
        verdict = "PASS" if stats.p95 < TARGET_MS else "FAIL"
        rows.append([result.scenario.name, stats.median, stats.p95, _queries_cell(result.queries), TARGET_MS, verdict])
    print_table(["scenario", "p50 ms", "p95 ms", "queries", "target ms", "verdict"], rows)
    print()
    print(
        "Where the time goes: python cpu = this process's CPU per timed request (p50); db = query time per "
        "request and the slowest query (p50 / max over the warm half of the query-counted requests):"
    )
    print_table(
        ["scenario", "python cpu ms", "db ms", "slowest query ms", "slowest query"],
        [
            [
                r.scenario.name,
                summarize(r.cpu).median,
                summarize(r.db_ms).median,
                r.slowest[0][0] if r.slowest else None,
                _short_sql(r.slowest[0][1], 80) if r.slowest else "",
            ]
            for r in results
        ],
    )
    for result in results:
        failing = summarize(result.times).p95 >= TARGET_MS
        if not (args.explain_all or (args.explain and failing)):
            continue
        shown = set()
        for ms, sql in result.slowest:
            if not sql.lstrip().upper().startswith("SELECT") or sql in shown:
                continue
            shown.add(sql)
            print(f"\n--- {result.scenario.name}: {ms:.1f} ms\n{sql}\n{explain(sql)}")
            if len(shown) == 2:
                break
    print(f"reviews_p95_max_ms={fmt(worst, 2)}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
