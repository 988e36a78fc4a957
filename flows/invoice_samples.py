"""Sample invoices for the demo: the text a flow reads, and the truth a careful reviewer checks it against.

Each sample is rendered from a known invoice, in one of the layouts real
suppliers send (different labels, a missing line, a typo in the total, a
free-text e-mail), so the demo queue holds the mix a finance team sees and the
seeded decisions measure the extraction's real accuracy: the demo reviewer
approves what matches the truth and corrects what does not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

VENDORS = (
    "Acme Supplies Ltd",
    "Northwind Traders",
    "Globex Engineering",
    "Initech Software",
    "Umbrella Facilities",
    "Stark Logistics",
    "Wayne Office Furniture",
    "Hooli Cloud Services",
)
PRODUCTS = (
    ("Printer paper (box)", 24.50),
    ("Toner cartridge", 89.00),
    ("Consulting hour", 150.00),
    ("Cloud storage (TB-month)", 21.00),
    ("Desk chair", 310.00),
    ("Freight, pallet", 95.00),
    ("Support plan (month)", 499.00),
    ("Cleaning service (visit)", 180.00),
)
CURRENCIES = ("EUR", "USD", "GBP")
# How each sample is laid out: (layout, share of the corpus).
LAYOUTS = (
    ("standard", 0.40),
    ("variant_labels", 0.20),
    ("missing_number", 0.10),
    ("total_typo", 0.10),
    ("high_value", 0.10),
    ("free_text", 0.10),
)


@dataclass(frozen=True)
class SampleInvoice:
    """One demo invoice: its text, what it really says, and whether it is an invoice at all."""

    layout: str
    text: str
    truth: dict[str, Any] = field(default_factory=dict)
    is_invoice: bool = True


def _truth(rng: random.Random, index: int, *, high_value: bool) -> dict[str, Any]:
    issued = date(2026, 9, 1) + timedelta(days=rng.randrange(75))
    items = []
    for description, price in rng.sample(PRODUCTS, rng.randint(1, 3)):
        quantity = rng.randint(1, 12)
        if high_value:
            quantity *= 200
        items.append(
            {"description": description, "quantity": float(quantity), "unit_price": price, "amount": quantity * price}
        )
    return {
        "vendor": rng.choice(VENDORS),
        "invoice_number": f"INV-{2026_000 + index}",
        "invoice_date": issued.isoformat(),
        "due_date": (issued + timedelta(days=30)).isoformat(),
        "currency": rng.choice(CURRENCIES),
        "line_items": items,
        "total_amount": round(sum(item["amount"] for item in items), 2),
    }


def _render(truth: dict[str, Any], layout: str) -> str:
    item_lines = [
        f"{item['description']} | {item['quantity']:g} | {item['unit_price']:,.2f} | {item['amount']:,.2f}"
        for item in truth["line_items"]
    ]
    total = truth["total_amount"]
    if layout == "variant_labels":
        header = [
            f"From: {truth['vendor']}",
            f"Invoice No. {truth['invoice_number']}",
            f"Date: {truth['invoice_date']}",
        ]
        footer = [f"Amount due: {total:,.2f} {truth['currency']}"]
    else:
        header = [
            f"Vendor: {truth['vendor']}",
            *([] if layout == "missing_number" else [f"Invoice Number: {truth['invoice_number']}"]),
            f"Invoice Date: {truth['invoice_date']}",
            f"Due Date: {truth['due_date']}",
            f"Currency: {truth['currency']}",
        ]
        # A typo on the paper: the stated total is not the sum of the lines.
        stated = total + 100 if layout == "total_typo" else total
        footer = [f"Total: {stated:,.2f}"]
    return "\n".join([*header, "Description | Qty | Unit price | Amount", *item_lines, *footer]) + "\n"


def _as_printed(truth: dict[str, Any], layout: str) -> dict[str, Any]:
    """What a reviewer holding the paper would accept: a field the paper lacks stays empty."""
    if layout == "variant_labels":
        return {**truth, "due_date": None}
    if layout == "missing_number":
        return {**truth, "invoice_number": ""}
    return truth


def _free_text(truth: dict[str, Any]) -> str:
    return f"hi, {truth['vendor']} here. please pay us for the stuff we sent last month, the usual amount. thanks!!\n"


def sample_invoices(count: int, *, seed: int = 7) -> list[SampleInvoice]:
    """``count`` invoices in the corpus's layout mix, the same list for the same seed."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible demo corpus, not a secret
    layouts = [name for name, _ in LAYOUTS]
    weights = [share for _, share in LAYOUTS]
    samples = []
    for index in range(count):
        layout = rng.choices(layouts, weights)[0]
        truth = _truth(rng, index, high_value=layout == "high_value")
        if layout == "free_text":
            samples.append(SampleInvoice(layout, _free_text(truth), truth, is_invoice=False))
        else:
            samples.append(SampleInvoice(layout, _render(truth, layout), _as_printed(truth, layout)))
    return samples


def _first_of_each_layout() -> dict[str, dict[str, str]]:
    first: dict[str, dict[str, str]] = {}
    for sample in sample_invoices(60):
        first.setdefault(sample.layout, {"raw_invoice": sample.text})
    return first


# The example of what checks are for: the lines add up to 3,480.00, the total says 3,580.00.
LINE_SUM_MISMATCH = """Vendor: Initech Software
Invoice Number: IS-3580
Invoice Date: 2026-10-05
Due Date: 2026-11-04
Currency: EUR
Description | Qty | Unit price | Amount
Consulting hour | 20 | 150.00 | 3,000.00
Cloud storage (TB-month) | 20 | 24.00 | 480.00
Total: 3,580.00
"""

SAMPLE_INPUTS: dict[str, dict[str, str]] = {
    **_first_of_each_layout(),
    "line_sum_mismatch": {"raw_invoice": LINE_SUM_MISMATCH},
}
"""One invoice of each layout (label -> flow inputs): what a new user finds on first start. Each layout's
first invoice is also the first of the seeded history, so the queue shows them as possible duplicates of
the invoices reviewed before, with a link to each."""

# Uploaded as a PDF by the demo seed, so a first start shows an invoice beside its original. Long enough
# (25 lines) that its total comes last, as on paper.
PDF_INVOICE = """Vendor: Northwind Office Supply
Invoice Number: NW-20931
Invoice Date: 2026-10-12
Due Date: 2026-11-11
Currency: EUR
Bill to: Review Console Ltd, 4 Canal Street, Leeds
Description | Qty | Unit price | Amount
Copy paper A4, box | 12 | 24.50 | 294.00
Toner cartridge, black | 6 | 89.00 | 534.00
Toner cartridge, colour | 3 | 119.00 | 357.00
Desk organiser | 10 | 14.90 | 149.00
Whiteboard markers, pack | 15 | 6.40 | 96.00
Office chair, mesh | 4 | 212.50 | 850.00
Monitor arm | 5 | 48.00 | 240.00
Filing cabinet, 3 drawers | 1 | 185.50 | 185.50
Stapler, heavy duty | 4 | 24.75 | 99.00
Notebooks, pack of 10 | 8 | 12.50 | 100.00
Cable organiser | 20 | 3.05 | 61.00
Delivery | 1 | 40.00 | 40.00
Payment terms: 30 days net
Bank: NL91 ABNA 0417 1643 00
Thank you for your order.
Purchase order: PO-4471
Prices include VAT at 21%
Total: 3,005.50
"""
