"""Invoice processing: extract structured data from invoice text, then route it to a reviewer."""

from __future__ import annotations

import re
from datetime import date

from crewai.flow.flow import Flow, listen, router, start
from crewai.flow.human_feedback import HumanFeedbackResult, human_feedback
from crewai.flow.persistence import persist
from pydantic import BaseModel, Field

from reviewconsole.autonomy.services import gate
from reviewconsole.engine.llms import build_llm, register_responder
from reviewconsole.engine.registry import register_flow
from reviewconsole.reviews.provider import ReviewConsoleProvider

HIGH_VALUE_TOTAL = 50_000


class InvoiceInputs(BaseModel):
    raw_invoice: str = Field(
        description="The invoice as text: vendor, number, dates, line items and total.",
        json_schema_extra={"widget": "textarea"},
    )


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
    confidence: float = Field(default=0.0, ge=0, le=1)


class InvoiceState(BaseModel):
    id: str = ""
    raw_invoice: str = ""
    invoice: dict | None = None
    stage: str = "received"


@register_flow(
    name="invoice_processing",
    title="Invoice processing",
    inputs=InvoiceInputs,
    output_types=["invoice"],
)
@persist()
class InvoiceProcessingFlow(Flow[InvoiceState]):
    """Extract an invoice, flag high-value ones, and have a person approve or correct it."""

    @start()
    def extract(self) -> dict:
        answer = build_llm().call(
            messages=[
                {"role": "system", "content": "Extract the invoice fields as JSON."},
                {"role": "user", "content": self.state.raw_invoice},
            ],
            response_model=InvoiceData,
        )
        invoice = InvoiceData.model_validate_json(answer) if isinstance(answer, str) else answer
        self.state.invoice = invoice.model_dump(mode="json")
        self.state.stage = "extracted"
        return self.state.invoice

    @router(extract, emit=["human_review", "auto_approved"])
    def validate_extraction(self) -> str:
        invoice = self.state.invoice
        # High value is a business rule: always reviewed, whatever the confidence.
        high_value = invoice["total_amount"] > HIGH_VALUE_TOTAL
        return gate(
            "invoice", invoice["confidence"], force_review=high_value, reason="high_value" if high_value else None
        )

    @listen("human_review")
    @human_feedback(
        message="Check the extracted invoice against the original text.",
        emit=["approved", "rejected"],
        provider=ReviewConsoleProvider(output_type="invoice", schema=InvoiceData),
    )
    def review_invoice(self) -> InvoiceData:
        return InvoiceData.model_validate(self.state.invoice)

    @listen("auto_approved")
    def auto_approve(self) -> dict:
        self.state.stage = "approved"
        return {"stage": "approved", "invoice": self.state.invoice, "reviewed": False}

    @listen("approved")
    def approve(self, result: HumanFeedbackResult) -> dict:
        approved = result.output if isinstance(result.output, dict) else result.output.model_dump(mode="json")
        self.state.invoice = approved
        self.state.stage = "approved"
        return {"stage": "approved", "invoice": approved, "reviewed": True}

    @listen("rejected")
    def reject(self, result: HumanFeedbackResult) -> dict:
        self.state.stage = "rejected"
        return {"stage": "rejected", "reason": result.feedback}


# How the offline demo model reads invoices: labelled lines in common variants.
_LABELS = {
    "vendor": r"(?:vendor|from|supplier)",
    "invoice_number": r"(?:invoice\s*(?:number|no\.?|#))",
    "invoice_date": r"(?:invoice\s*date|date)",
    "due_date": r"(?:due\s*date|due)",
    "total": r"(?:total|amount\s*due|total\s*due)",
    "currency": r"(?:currency)",
}
_AMOUNT = r"[-+]?\d[\d,]*(?:\.\d+)?"
_ITEM = re.compile(
    rf"^[ \t]*[-*]?[ \t]*(?P<desc>[^|\d\n][^|\n]*?)[ \t]*(?:\||,)[ \t]*(?P<qty>{_AMOUNT})[ \t]*(?:\||,|x)[ \t]*"
    rf"[$€£]?(?P<price>{_AMOUNT})[ \t]*(?:\||,|=)[ \t]*[$€£]?(?P<amount>{_AMOUNT})[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _labelled(text: str, label: str) -> str | None:
    match = re.search(rf"^\s*{label}\s*[:\-]\s*(.+?)\s*$", text, re.IGNORECASE | re.MULTILINE)
    return match.group(1) if match else None


def _parse_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        return None


def demo_extract_invoice(prompt_text: str) -> dict:
    """Deterministic extraction; confidence falls with each missing or inconsistent field."""
    vendor = _labelled(prompt_text, _LABELS["vendor"])
    number = _labelled(prompt_text, _LABELS["invoice_number"])
    invoice_date = _parse_date(_labelled(prompt_text, _LABELS["invoice_date"]))
    due_date = _parse_date(_labelled(prompt_text, _LABELS["due_date"]))
    total_text = _labelled(prompt_text, _LABELS["total"])
    total_match = re.search(_AMOUNT, total_text or "")
    total = _number(total_match.group(0)) if total_match else 0.0
    currency = (_labelled(prompt_text, _LABELS["currency"]) or "").upper()[:3]
    if not currency:
        symbol = re.search(r"[$€£]|\b(USD|EUR|GBP)\b", prompt_text)
        currency = {"$": "USD", "€": "EUR", "£": "GBP"}.get(symbol.group(0), symbol.group(0)) if symbol else "USD"
    items = [
        {
            "description": m["desc"].strip(),
            "quantity": _number(m["qty"]),
            "unit_price": _number(m["price"]),
            "amount": _number(m["amount"]),
        }
        for m in _ITEM.finditer(prompt_text)
        if m["desc"].strip().lower() not in {"description", "item"}
    ]
    confidence = 0.97
    missing = [vendor, number, invoice_date, total_match]
    confidence -= 0.15 * sum(1 for value in missing if not value)
    if items and abs(sum(item["amount"] for item in items) - total) > 0.01:
        confidence -= 0.25
    if not items:
        confidence -= 0.1
    return {
        "vendor": vendor or "",
        "invoice_number": number or "",
        "invoice_date": invoice_date,
        "due_date": due_date,
        "currency": currency,
        "line_items": items,
        "total_amount": total,
        "confidence": round(max(0.05, min(confidence, 0.99)), 2),
    }


register_responder(InvoiceData, demo_extract_invoice)
