"""Invoice processing: a crew extracts the invoice, a doubtful reading is redone, a person checks what needs it.

The flow is the pattern to copy for a flow with review:

1. ``extract`` runs a one-agent crew that reads the invoice into ``InvoiceData``.
2. ``validate_extraction`` routes the reading. ``low_confidence`` (below
   ``REREAD_BELOW``) goes to ``re_extract``, a different agent told to re-read
   the invoice line by line, at most ``MAX_REREADS`` times; if it is still
   doubtful it goes to a person with reason ``unreadable``.
   ``high_value`` always goes to a person. ``standard`` asks the autonomy
   gate, whose policy for ``invoice`` decides between review and straight
   through.
3. ``review_invoice`` pauses for the reviewer; their decision lands in
   ``approve`` or ``reject``.

Every route goes through ``gate()`` so that each review, forced or not, is
recorded and measured by the autonomy statistics.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from crewai.flow.flow import Flow, listen, or_, router, start
from crewai.flow.human_feedback import HumanFeedbackResult, human_feedback
from crewai.flow.persistence import persist
from pydantic import BaseModel, Field

from flows.crews import agent, run_crew, task
from flows.invoice_checks import register_invoice_checks
from flows.invoice_demo import demo_extract_invoice
from reviewconsole.autonomy.services import gate
from reviewconsole.engine.registry import register_flow
from reviewconsole.engine.summaries import MONEY, SummaryField, register_summary
from reviewconsole.llm.responders import register_responder
from reviewconsole.reviews.provider import ReviewConsoleProvider

OUTPUT_TYPE = "invoice"
HIGH_VALUE_TOTAL = 50_000
# Below this a reading has missing or contradicting fields: a careful second
# reading is cheaper than a person's time. It is not the autonomy threshold
# (the policy holds that); readings above it may still be sent to review.
REREAD_BELOW = 0.6
MAX_REREADS = 2


class InvoiceInputs(BaseModel):
    raw_invoice: str = Field(
        description="The invoice as text: vendor, number, dates, line items and total.",
        # "upload": the start page also takes a PDF, whose text becomes this value.
        json_schema_extra={"widget": "textarea", "upload": "pdf"},
    )


# Bounds of a reading, far above any real invoice. Declared on the models, they reach the LLM (the task's
# schema), API clients (the item's schema) and the edit form, and refuse an edit that would put a megabyte
# in the vendor or ten thousand line items on the books.
MAX_LINE_ITEMS = 500
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 1000


class LineItem(BaseModel):
    description: str = Field(max_length=MAX_DESCRIPTION_CHARS)
    quantity: float = Field(default=1, ge=0)
    unit_price: float = Field(default=0, ge=0)
    amount: float = Field(default=0, ge=0)


class InvoiceData(BaseModel):
    """An invoice as read. Amounts are never negative: an invoice bills, a credit note is another document.

    The defaults let a partial reading parse (a field the reader could not find stays empty); they never
    fill in a reviewer's edit, which must carry every field (see reviews.schemas.validated_edit).
    """

    vendor: str = Field(default="", max_length=MAX_NAME_CHARS)
    invoice_number: str = Field(default="", max_length=100)
    invoice_date: date | None = None
    due_date: date | None = None
    # Empty when the invoice names none: a default would pass for something the invoice said.
    currency: str = Field(default="", max_length=16)
    line_items: list[LineItem] = Field(default_factory=list, max_length=MAX_LINE_ITEMS)
    total_amount: float = Field(default=0, ge=0)
    confidence: float = Field(default=0.0, ge=0, le=1)


class SourceLines(BaseModel):
    field: str = Field(max_length=200, description="A field path: vendor, total_amount, line_items.0, ...")
    lines: list[int] = Field(max_length=50, description="The 1-based numbers of the invoice's lines it was read from.")


class InvoiceReading(InvoiceData):
    """What a reader answers: the invoice, and where in the text it read each field (not part of the output).

    A list of objects rather than a dict keyed by field: OpenAI's strict structured output allows no open keys.
    """

    source_lines: list[SourceLines] = Field(default_factory=list, max_length=MAX_LINE_ITEMS + 20)


class InvoiceState(BaseModel):
    id: str = ""
    raw_invoice: str = ""
    invoice: InvoiceData | None = None
    source_lines: dict[str, list[int]] = Field(default_factory=dict)
    attempts: int = 0  # readings so far: the first one plus careful re-readings
    stage: str = "received"  # received → extracted → approved | rejected


# The invoice is the last placeholder: CrewAI fills placeholders in order, so
# text in the invoice that looks like "{confidence}" is never substituted.
EXTRACT_TASK = """Extract the invoice between the <invoice> tags.
Copy the vendor, invoice number and line-item descriptions exactly as written; give dates as YYYY-MM-DD and amounts
as plain numbers. Leave a field empty rather than guess it. Set confidence between 0 and 1: lower it for every field
you could not find and for figures that disagree (line items that do not add up to the total).
<invoice>
{raw_invoice}
</invoice>"""

REREAD_TASK = """A first reading of the invoice between the <invoice> tags was unreliable (confidence {confidence}).
Re-read it line by line. Labels may use other separators than a colon, the total may stand on a line of its own
without a label, and line items may be aligned in columns instead of separated by bars. Give dates as YYYY-MM-DD and
amounts as plain numbers. Set confidence between 0 and 1, lowering it for anything you had to infer.
<invoice>
{raw_invoice}
</invoice>"""

EXPECTED_OUTPUT = "The invoice's vendor, number, dates, currency, line items and total, with your confidence."


# Two readers with different instructions: the clerk reads the usual layouts
# quickly; the auditor gets only what the clerk could not read.
CLERK = {
    "role": "Accounts payable clerk",
    "goal": "Turn each incoming invoice into exact structured data",
    "backstory": "You key in supplier invoices all day and never invent a figure that is not on the paper.",
}
AUDITOR = {
    "role": "Invoice auditor",
    "goal": "Recover the fields a first reading of an invoice missed, without inventing any",
    "backstory": "You get the invoices the clerks could not read: odd layouts, missing labels, scanned tables.",
}
# One answer, plus one more if it does not fit the schema; more rounds would
# only repeat a confused reading (the re-reading loop is the flow's business).
READER_MAX_ITER = 2


def _read(reader: dict[str, str], description: str, inputs: dict[str, str]) -> InvoiceReading:
    """Run a one-task sequential crew: ``reader`` extracts the invoice as ``description`` asks."""
    member = agent(**reader, max_iter=READER_MAX_ITER)
    return run_crew([task(description, EXPECTED_OUTPUT, member, InvoiceReading)], InvoiceReading, inputs)


def read_invoice(raw_invoice: str) -> InvoiceReading:
    """The first reading: the clerk's crew."""
    return _read(CLERK, EXTRACT_TASK, {"raw_invoice": raw_invoice})


def reread_invoice(raw_invoice: str, previous: InvoiceData) -> InvoiceReading:
    """The fallback reading: the auditor's crew, told how unsure the previous reading was."""
    return _read(AUDITOR, REREAD_TASK, {"confidence": f"{previous.confidence:.2f}", "raw_invoice": raw_invoice})


@register_flow(
    name="invoice_processing",
    title="Invoice processing",
    inputs=InvoiceInputs,
    output_types=[OUTPUT_TYPE],
    review_reasons={"unreadable": "Still unreadable after re-reading"},
)
@persist()
class InvoiceProcessingFlow(Flow[InvoiceState]):
    """Extract an invoice, re-read doubtful ones, and have a person approve or correct what needs it."""

    def _keep(self, reading: InvoiceReading) -> InvoiceData:
        invoice = InvoiceData.model_validate(reading.model_dump(exclude={"source_lines"}))
        self.state.invoice = invoice
        self.state.source_lines = {entry.field: entry.lines for entry in reading.source_lines}
        self.state.attempts += 1
        self.state.stage = "extracted"
        return invoice

    def _gate(self, **rule: Any) -> str:
        """Ask the gate, which runs the invoice checks on the reading against the invoice text."""
        invoice = self.state.invoice
        return gate(
            OUTPUT_TYPE, invoice.confidence, output=invoice, inputs={"raw_invoice": self.state.raw_invoice}, **rule
        )

    def _finish(self, stage: str, **details: Any) -> dict[str, Any]:
        self.state.stage = stage
        invoice = self.state.invoice.model_dump(mode="json") if self.state.invoice else None
        return {"stage": stage, "attempts": self.state.attempts, "invoice": invoice, **details}

    @start()
    def extract(self) -> InvoiceData:
        return self._keep(read_invoice(self.state.raw_invoice))

    @listen("low_confidence")
    def re_extract(self) -> InvoiceData:
        return self._keep(reread_invoice(self.state.raw_invoice, self.state.invoice))

    @router(or_(extract, re_extract), emit=["low_confidence", "high_value", "standard", "human_review"])
    def validate_extraction(self) -> str:
        invoice = self.state.invoice
        if invoice.confidence < REREAD_BELOW:
            rereads = self.state.attempts - 1  # the first reading is not a re-reading
            if rereads < MAX_REREADS:
                return "low_confidence"
            return self._gate(force_review=True, reason="unreadable")
        if invoice.total_amount > HIGH_VALUE_TOTAL:
            return "high_value"
        return "standard"

    @router("high_value", emit=["human_review"])
    def review_high_value(self) -> str:
        # A business rule: always reviewed, whatever the confidence or the policy.
        return self._gate(force_review=True, reason="high_value")

    @router("standard", emit=["human_review", "auto_approved"])
    def apply_autonomy_policy(self) -> str:
        return self._gate()

    @listen("human_review")
    @human_feedback(
        message="Check the extracted invoice against the original text.",
        emit=["approved", "rejected"],
        provider=ReviewConsoleProvider(
            output_type=OUTPUT_TYPE,
            schema=InvoiceData,
            source_input="raw_invoice",
            source_spans=lambda state: state.source_lines,
        ),
    )
    def review_invoice(self) -> InvoiceData:
        return self.state.invoice

    @listen("auto_approved")
    def auto_approve(self) -> dict[str, Any]:
        return self._finish("approved", reviewed=False)

    @listen("approved")
    def approve(self, result: HumanFeedbackResult) -> dict[str, Any]:
        # A reviewer's edit arrives as a dict; validating it keeps the state typed.
        self.state.invoice = InvoiceData.model_validate(result.output)
        return self._finish("approved", reviewed=True)

    @listen("rejected")
    def reject(self, result: HumanFeedbackResult) -> dict[str, Any]:
        return self._finish("rejected", reviewed=True, reason=result.feedback)


# Teach the offline demo model to fill InvoiceData from the invoice text (see flows/invoice_demo.py).
register_responder(InvoiceReading, demo_extract_invoice)
register_invoice_checks(OUTPUT_TYPE)
register_summary(
    OUTPUT_TYPE,
    [
        SummaryField("vendor", "Vendor"),
        SummaryField("invoice_number", "Number"),
        SummaryField("total_amount", "Total", kind=MONEY, currency="currency"),
        SummaryField("due_date", "Due"),
    ],
)
