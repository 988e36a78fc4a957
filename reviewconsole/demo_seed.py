"""Demo data for a first start: users, policies, a reviewed history and fresh work in the queue.

Everything goes through the product's own paths: runs are created and executed
by the engine on the configured LLM (the offline demo model by default), and the
history's decisions are made with ``reviews.services.decide`` by a demo reviewer
who checks each invoice against what the paper really says. The dashboards
therefore show the extraction's real accuracy, not invented figures.

Each part is idempotent: users and policies are created when missing, the
history and the queue only when no seeded run exists yet.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import SimpleUploadedFile

from reviewconsole.autonomy.services import policy_ensure
from reviewconsole.engine import registry, tasks
from reviewconsole.engine.models import FlowRun
from reviewconsole.engine.services import run_create
from reviewconsole.engine.uploads import read_upload
from reviewconsole.reviews.models import FirstApproval, ReviewItem, ReviewStatus
from reviewconsole.reviews.roles import role_grant
from reviewconsole.reviews.services import decide
from reviewconsole.simple_pdf import text_pdf

SEED_TRIGGER = "seed"
HISTORY_TRIGGER = "seed-history"
INVOICE_FIELDS = ("vendor", "invoice_number", "invoice_date", "due_date", "currency", "total_amount")
LINE_ITEM_FIELDS = ("description", "quantity", "unit_price", "amount")


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    superuser: bool = False
    output_types: tuple[str, ...] = ()  # empty: reviews every type


DEMO_USERS = (
    DemoUser("admin", "manager", superuser=True),
    DemoUser("manager", "manager"),
    DemoUser("reviewer", "reviewer"),
    DemoUser("finance", "reviewer", output_types=("invoice",)),
)


def users_ensure(users: Iterable[DemoUser] = DEMO_USERS) -> list[tuple[str, str]]:
    """Create the missing demo users with random passwords; returns (username, password) of those created."""
    user_model = get_user_model()
    created = []
    for spec in users:
        if user_model.objects.filter(username=spec.username).exists():
            continue
        password = secrets.token_urlsafe(9)
        user = user_model.objects.create_user(spec.username, password=password, is_superuser=spec.superuser)
        role_grant(user=user, role=spec.role, output_types=spec.output_types)
        created.append((spec.username, password))
    return created


def policies_ensure() -> list[str]:
    """A policy for every output type a registered flow can send to review (new types start fully reviewed)."""
    output_types = sorted({t for spec in registry.all_flows() for t in spec.output_types})
    for output_type in output_types:
        policy_ensure(output_type=output_type)
    return output_types


def already_seeded() -> bool:
    """True once the demo work exists; the history and the queue are seeded together, once."""
    return FlowRun.objects.filter(trigger__in=(SEED_TRIGGER, HISTORY_TRIGGER)).exists()


def _run_inline(flow_name: str, inputs: dict[str, Any]) -> FlowRun:
    """Create and execute a run in this process, up to its first pause or its end."""
    run = run_create(flow_name=flow_name, inputs=inputs, trigger=HISTORY_TRIGGER, enqueue=False)
    tasks.run_flow(str(run.id))
    return run


def _same_line_items(extracted: list[dict[str, Any]], truth: list[dict[str, Any]]) -> bool:
    if len(extracted) != len(truth):
        return False
    return all(
        str(got.get(name)) == str(want.get(name)) if name == "description" else float(got.get(name) or 0) == want[name]
        for got, want in zip(extracted, truth, strict=True)
        for name in LINE_ITEM_FIELDS
    )


def invoice_correction(output: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any] | None:
    """The edit a careful reviewer makes to ``output`` given the paper's ``truth``; None when it is right."""
    wrong = [name for name in INVOICE_FIELDS if output.get(name) != truth.get(name)]
    if wrong == ["total_amount"] and float(output.get("total_amount") or 0) == truth["total_amount"]:
        wrong = []
    lines_ok = _same_line_items(output.get("line_items") or [], truth["line_items"])
    if not wrong and lines_ok:
        return None
    corrected = {**output, **{name: truth[name] for name in wrong}}
    if not lines_ok:
        corrected["line_items"] = truth["line_items"]
    return corrected


def _review_invoice(item: ReviewItem, sample: Any, reviewer: AbstractBaseUser, checker: AbstractBaseUser) -> None:
    """The finance reviewer's decision; on an item that needs four eyes, `checker` then confirms it."""
    if not sample.is_invoice:
        decide(
            item_id=item.id,
            user=reviewer,
            outcome="rejected",
            reason_code="not_applicable",
            comment="Not an invoice: a payment request without figures.",
        )
        return
    correction = invoice_correction(item.output or {}, sample.truth)
    if isinstance(decide(item_id=item.id, user=reviewer, outcome="approved", edited_output=correction), FirstApproval):
        decide(item_id=item.id, user=checker, outcome="approved")


def _approve(item: ReviewItem, reviewer: AbstractBaseUser) -> None:
    decide(item_id=item.id, user=reviewer, outcome=item.outcomes[0])


class _DemoReviewing:
    """Decides paused items in arrival order, leaving every ``leave_every``-th one for the queue."""

    def __init__(self, leave_every: int) -> None:
        self.leave_every = leave_every
        self.paused = 0

    def __call__(self, run: FlowRun, review: Callable[[ReviewItem], None]) -> None:
        item = run.review_items.filter(status=ReviewStatus.PENDING).first()
        if item is None:
            return
        self.paused += 1
        if self.paused % self.leave_every:
            review(item)


def history_seed(*, invoices: int = 40, leave_every: int = 4, progress: Callable[[str], None] = print) -> int:
    """Run sample work and review most of it, so the dashboards have data; returns the number of runs.

    Invoices come from the demo corpus, whose truth the finance reviewer checks
    each extraction against (the general reviewer gives the second approval of
    those that need four eyes); the other flows run their sample inputs and the
    general reviewer approves them. Every ``leave_every``-th paused item stays
    in the queue. Resumes of the decided ones are queued for the worker, like
    any decision.
    """
    from flows import content, invoice_samples, leads

    user_model = get_user_model()
    finance = user_model.objects.get(username="finance")
    reviewer = user_model.objects.get(username="reviewer")
    reviewing = _DemoReviewing(leave_every)

    samples = invoice_samples.sample_invoices(invoices)
    for sample in samples:
        run = _run_inline("invoice_processing", {"raw_invoice": sample.text})
        reviewing(run, lambda item, sample=sample: _review_invoice(item, sample, finance, reviewer))
    progress(f"  {len(samples)} invoices processed")
    runs = len(samples)
    # In order: a lead sample that is a returning company relies on the earlier run being recalled.
    for flow_name, inputs_by_label in (
        ("content_production", content.SAMPLE_INPUTS),
        ("lead_enrichment", leads.SAMPLE_INPUTS),
    ):
        for inputs in inputs_by_label.values():
            reviewing(_run_inline(flow_name, inputs), lambda item: _approve(item, reviewer))
        runs += len(inputs_by_label)
        progress(f"  {len(inputs_by_label)} {flow_name} runs processed")
    return runs


def queue_seed() -> int:
    """Queue one invoice of each layout for the worker, and one uploaded as a PDF, so a first start shows runs in
    progress and an invoice beside its original."""
    from flows import invoice_samples

    for inputs in invoice_samples.SAMPLE_INPUTS.values():
        run_create(flow_name="invoice_processing", inputs=inputs, trigger=SEED_TRIGGER)
    pdf = SimpleUploadedFile(
        "northwind-NW-20931.pdf", text_pdf(invoice_samples.PDF_INVOICE.splitlines(), size=11), "application/pdf"
    )
    # Read as the start form reads an upload: the flow gets the PDF's text, the run keeps the PDF.
    reading = read_upload("pdf", pdf)
    run_create(
        flow_name="invoice_processing",
        inputs={"raw_invoice": reading.text},
        trigger=SEED_TRIGGER,
        documents={"raw_invoice": (pdf, reading.pages)},
    )
    return len(invoice_samples.SAMPLE_INPUTS) + 1
