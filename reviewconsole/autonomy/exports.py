"""Exports of one output type's decisions over a range of days: the audit trail (CSV) and a dataset (JSONL).

Both read one query over Decision joined to its item, run, first approval, second review and gate decision
(`values()`, no model instances, no query per row), streamed with `.iterator(chunk_size=…)`: a server-side
cursor on PostgreSQL and a stepped statement on SQLite, so memory stays flat however many rows there are.

The audit export is for people: who decided what, when, why, what they changed and how long they looked.
Every cell a reviewer or an LLM wrote is untrusted, and a spreadsheet runs a cell starting with `=` as a
formula: `csv_cell` neutralizes those.

The dataset export is for machines (evals, few-shot examples, fine-tuning): one `DatasetLine` per decided
item, with the verdict exactly as the autonomy evidence counts it (the item's gate decision: an adjudicated
item carries the upheld decision's verdict) and the corrected output of the upheld decision.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import Any, Literal

import pydantic
from django.db import connections, transaction
from django.db.models import Q

from reviewconsole.autonomy.rollup import day_start
from reviewconsole.reviews.models import Decision, ReviewStatus, SecondReviewStatus
from reviewconsole.reviews.reasons import review_reasons
from reviewconsole.reviews.reliability import UPHOLD_SECOND

EXPORT_KINDS = ("audit", "dataset")
# Rows fetched per round trip; a chunk is the most the export holds in memory at once.
EXPORT_CHUNK_SIZE = 2000
# Dates outside these bounds set no bound: a day's start or end there would overflow a datetime.
_EARLIEST, _LATEST = date(2, 1, 1), date(9998, 12, 31)
# A spreadsheet reads a cell starting with one of these as a formula (or, for tab and CR, shifts it to one).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

AUDIT_COLUMNS = (
    "decision_id",
    "decided_at",
    "reviewer",
    "outcome",
    "reject_reason",
    "comment",
    "review_reason",
    "review_reason_label",
    "edited",
    "diff",
    "handling_seconds",
    "mark",
    "four_eyes_first_approver",
    "four_eyes_first_at",
    "expired",
    "item_id",
    "run_id",
    "output_type",
    "flow_version",
    "model",
    "confidence",
    "item_created_at",
    "verdict",
    "counted",
    "second_review",
    "adjudicated_for",
    "adjudicated_outcome",
    "adjudicated_by",
    "adjudicated_at",
)

# What both exports read of a decision; each adds its own (the dataset the big JSON columns).
_COMMON_FIELDS = (
    "id",
    "at",
    "outcome",
    "edited_output",
    "reason_code",
    "item_id",
    "item__run_id",
    "item__reason",
    "item__status",
    "item__gate_decision__verdict",
    "item__gate_decision__excluded",
    "item__gate_decision__flow_version",
    "item__gate_decision__model",
    "item__second_review__status",
    "item__second_review__adjudicated_for",
    "item__second_review__outcome",
    "item__second_review__edited_output",
)
_AUDIT_FIELDS = (
    *_COMMON_FIELDS,
    "diff",
    "comment",
    "handling_seconds",
    "mark",
    "user__username",
    "item__confidence",
    "item__created_at",
    "item__first_approval__user__username",
    "item__first_approval__at",
    "item__second_review__adjudicated_by__username",
    "item__second_review__adjudicated_at",
)
_DATASET_FIELDS = (*_COMMON_FIELDS, "item__output", "item__outcomes", "item__run__inputs")


def export_period(date_from: date | None, date_to: date | None) -> Q:
    """Decisions made from the start of `date_from` to the end of `date_to`, local days (both inclusive; None:
    unbounded). Days are the default time zone's, as on the dashboards."""
    period = Q()
    if date_from is not None and date_from > _EARLIEST:
        period &= Q(at__gte=day_start(date_from))
    if date_to is not None and date_to < _LATEST:
        period &= Q(at__lt=day_start(date_to + timedelta(days=1)))
    return period


def _decision_rows(
    output_type: str, date_from: date | None, date_to: date | None, fields: tuple[str, ...]
) -> Iterator[dict[str, Any]]:
    # `Decision.output_type` is the item's, copied: the filter needs no join. Oldest first, as an audit reads.
    rows = Decision.objects.filter(export_period(date_from, date_to), output_type=output_type).order_by("at", "id")
    # On PostgreSQL a server-side cursor inside a transaction hands rows over as they are fetched; outside one it
    # is declared WITH HOLD, and the server copies the whole result aside before the first row is sent. Not on
    # SQLite, whose transactions (IMMEDIATE) would hold the write lock for the whole download.
    within = transaction.atomic(using=rows.db) if connections[rows.db].vendor == "postgresql" else nullcontext()
    with within:
        yield from rows.values(*fields).iterator(chunk_size=EXPORT_CHUNK_SIZE)


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a string starting like a formula gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _utc(moment: datetime | None) -> str:
    """ISO 8601 in UTC, with a Z: the same instant whatever zone the reader is in."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment is not None else ""


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _verdict(row: dict[str, Any]) -> str | None:
    return row["item__gate_decision__verdict"] or None


def _counted(row: dict[str, Any]) -> bool:
    """Whether the verdict counts as evidence (`rollup.counted_verdicts`): given, and not left out by the policy."""
    return _verdict(row) is not None and not row["item__gate_decision__excluded"]


def _adjudicated(row: dict[str, Any]) -> bool:
    return row["item__second_review__status"] == SecondReviewStatus.ADJUDICATED


def _upheld(row: dict[str, Any]) -> tuple[str, Any, str]:
    """The outcome, edit and reject reason that stand: the second reviewer's when a manager upheld them (a second
    review records no reason, as in `second_review_adjudicate`), else the decision's."""
    if _adjudicated(row) and row["item__second_review__adjudicated_for"] == UPHOLD_SECOND:
        return row["item__second_review__outcome"], row["item__second_review__edited_output"], ""
    return row["outcome"], row["edited_output"], row["reason_code"]


def audit_record(row: dict[str, Any], output_type: str, reason_labels: dict[str, str]) -> list[Any]:
    """One decision as the audit export's row, in `AUDIT_COLUMNS` order, before formula neutralizing."""
    adjudicated = _adjudicated(row)
    handling = row["handling_seconds"]
    values = {
        "decision_id": row["id"],
        "decided_at": _utc(row["at"]),
        "reviewer": row["user__username"] or "",
        "outcome": row["outcome"],
        "reject_reason": row["reason_code"],
        "comment": row["comment"],
        "review_reason": row["item__reason"],
        "review_reason_label": reason_labels.get(row["item__reason"], row["item__reason"]),
        "edited": row["edited_output"] is not None,
        "diff": _compact(row["diff"]) if row["diff"] else "",
        "handling_seconds": f"{handling:.3f}" if handling is not None else "",
        "mark": row["mark"],
        "four_eyes_first_approver": row["item__first_approval__user__username"] or "",
        "four_eyes_first_at": _utc(row["item__first_approval__at"]),
        "expired": row["item__status"] == ReviewStatus.EXPIRED,
        "item_id": row["item_id"],
        "run_id": row["item__run_id"],
        "output_type": output_type,
        "flow_version": row["item__gate_decision__flow_version"] or "",
        "model": row["item__gate_decision__model"] or "",
        "confidence": "" if row["item__confidence"] is None else row["item__confidence"],
        "item_created_at": _utc(row["item__created_at"]),
        "verdict": _verdict(row) or "",
        "counted": _counted(row),
        "second_review": row["item__second_review__status"] or "",
        "adjudicated_for": row["item__second_review__adjudicated_for"] if adjudicated else "",
        "adjudicated_outcome": _upheld(row)[0] if adjudicated else "",
        "adjudicated_by": (row["item__second_review__adjudicated_by__username"] or "") if adjudicated else "",
        "adjudicated_at": _utc(row["item__second_review__adjudicated_at"]) if adjudicated else "",
    }
    return [values[column] for column in AUDIT_COLUMNS]


def _batched(lines: Iterator[str], size: int = 100) -> Iterator[str]:
    """The lines joined in pieces of `size`: fewer, larger writes to the socket than a line each."""
    pieces: list[str] = []
    for line in lines:
        pieces.append(line)
        if len(pieces) == size:
            yield "".join(pieces)
            pieces = []
    yield "".join(pieces)


def _audit_lines(output_type: str, date_from: date | None, date_to: date | None) -> Iterator[str]:
    labels = {code: reason.label for code, reason in review_reasons().items()}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows = _decision_rows(output_type, date_from, date_to, _AUDIT_FIELDS)
    records = ([csv_cell(value) for value in audit_record(row, output_type, labels)] for row in rows)
    # `chain`, not a tuple: unpacking the generator would read every row into memory before the first is sent.
    for record in chain([AUDIT_COLUMNS], records):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(record)
        yield buffer.getvalue()


def audit_csv(*, output_type: str, date_from: date | None, date_to: date | None) -> Iterator[str]:
    """The audit export, as CSV text in pieces: the header, then one row per decision, oldest first."""
    return _batched(_audit_lines(output_type, date_from, date_to))


class DatasetLine(pydantic.BaseModel):
    """One line of the dataset export: a decided item's input, the AI's output, and what a person made of it."""

    model_config = pydantic.ConfigDict(extra="forbid")

    item_id: str = pydantic.Field(description="The review item (UUID).")
    run_id: str = pydantic.Field(description="The flow run that produced the output (UUID).")
    output_type: str
    flow_version: str = pydantic.Field(description="The version of the flow that produced the output; '' if unknown.")
    model: str = pydantic.Field(description="The model the run used; '' if unknown.")
    decided_at: str = pydantic.Field(description="When the decision was made, ISO 8601 in UTC.")
    input: dict[str, Any] = pydantic.Field(description="The run's inputs.")
    output: Any = pydantic.Field(description="The AI's output, as the reviewer saw it.")
    corrected_output: Any = pydantic.Field(
        description="The edited output if edited, the AI's output if approved unchanged, null if rejected (of the "
        "decision a manager upheld, for an adjudicated item)."
    )
    outcome: str = pydantic.Field(description="The outcome that stands (the upheld one, for an adjudicated item).")
    verdict: Literal["correct", "incorrect"] | None = pydantic.Field(
        description="As the autonomy evidence counts it: approved unchanged is correct, edited or rejected "
        "incorrect, expired none; an adjudicated item has the upheld decision's verdict."
    )
    counted: bool = pydantic.Field(description="The verdict counts as evidence (not a marked approval left out).")
    reject_reason: str = pydantic.Field(description="The reject reason code of a rejection, else ''.")
    review_reason: str = pydantic.Field(description="Why the output was sent to review.")
    expired: bool = pydantic.Field(description="Nobody decided: the item expired with its type's default outcome.")
    adjudicated: bool = pydantic.Field(description="A manager ruled on a disagreement between two reviewers.")


def dataset_line(row: dict[str, Any], output_type: str) -> DatasetLine:
    """One decided item as a dataset line."""
    outcome, edited, reject_reason = _upheld(row)
    outcomes = row["item__outcomes"] or []
    if edited is not None:
        corrected = edited
    elif outcomes and outcome == outcomes[0]:
        corrected = row["item__output"]
    else:
        corrected = None
    adjudicated = _adjudicated(row)
    return DatasetLine(
        item_id=str(row["item_id"]),
        run_id=str(row["item__run_id"]),
        output_type=output_type,
        flow_version=row["item__gate_decision__flow_version"] or "",
        model=row["item__gate_decision__model"] or "",
        decided_at=_utc(row["at"]),
        input=row["item__run__inputs"] or {},
        output=row["item__output"],
        corrected_output=corrected,
        outcome=outcome,
        verdict=_verdict(row),
        counted=_counted(row),
        reject_reason=reject_reason,
        review_reason=row["item__reason"],
        expired=row["item__status"] == ReviewStatus.EXPIRED,
        adjudicated=adjudicated,
    )


def dataset_jsonl(*, output_type: str, date_from: date | None, date_to: date | None) -> Iterator[str]:
    """The dataset export, as JSON Lines: one `DatasetLine` per decided item, oldest decision first."""
    rows = _decision_rows(output_type, date_from, date_to, _DATASET_FIELDS)
    return _batched(dataset_line(row, output_type).model_dump_json() + "\n" for row in rows)
