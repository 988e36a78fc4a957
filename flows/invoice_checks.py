"""The invoice flow's checks: what a reviewer should look at first, and what a policy may refuse to let through.

Each check reads the output as stored (a JSON dict: dates as ISO strings, amounts as numbers) and the run's
inputs (`raw_invoice`, the text the invoice was read from). `register_invoice_checks` declares them for the
output type; the engine's `run_checks` runs them at the gate, when the item is created and on every edit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from reviewconsole.engine.checks import (
    ERROR,
    MISSING,
    Check,
    CheckContext,
    finding,
    register_check,
    register_match_keys,
)
from reviewconsole.reviews.selectors import items_sharing_keys

# Amounts are in cents on invoices: anything within a cent is rounding, not a mistake.
TOLERANCE = 0.01
REQUIRED = {
    "vendor": "Vendor",
    "invoice_number": "Invoice number",
    "invoice_date": "Invoice date",
    "total_amount": "Total amount",
}
# How an invoice may name a currency besides its code.
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
NUMBER_KEY, AMOUNT_DATE_KEY = "number", "amount_date"


def _amount(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _money(value: float) -> str:
    return f"{value:,.2f}"


def line_items_vs_total(output: dict[str, Any], context: CheckContext) -> Iterator[dict[str, Any]]:
    """The line items add up to the total (an invoice without lines or without a total is left to `missing`)."""
    items = [item for item in output.get("line_items") or [] if isinstance(item, dict)]
    total = _amount(output.get("total_amount"))
    if not items or total <= 0:
        return
    lines = sum(_amount(item.get("amount")) for item in items)
    if abs(lines - total) > TOLERANCE:
        yield finding(
            "line_items_vs_total",
            ERROR,
            f"The line items add up to {_money(lines)} but the total is {_money(total)} "
            f"(a difference of {_money(abs(total - lines))}).",
            field="total_amount",
        )


def quantity_times_price(output: dict[str, Any], context: CheckContext) -> Iterator[dict[str, Any]]:
    """Each line's quantity x unit price is its amount."""
    for index, item in enumerate(output.get("line_items") or []):
        if not isinstance(item, dict):
            continue
        quantity, price, amount = (_amount(item.get(key)) for key in ("quantity", "unit_price", "amount"))
        expected = round(quantity * price, 2)
        if abs(expected - amount) > TOLERANCE:
            yield finding(
                "quantity_times_price",
                ERROR,
                f"Line {index + 1}: {quantity:g} x {_money(price)} is {_money(expected)}, not {_money(amount)}.",
                field=f"line_items.{index}.amount",
            )


def _names_currency(text: str, code: str) -> bool:
    if re.search(rf"\b{re.escape(code)}\b", text, re.IGNORECASE):
        return True
    symbol = CURRENCY_SYMBOLS.get(code.upper())
    return bool(symbol) and symbol in text


def missing_fields(output: dict[str, Any], context: CheckContext) -> Iterator[dict[str, Any]]:
    """Required fields the reading left empty, and a currency the invoice does not name.

    A reader (or a model's default) may fill in a currency the text never states; against the source it reads
    as what it is, not found, rather than as a plausible "USD".
    """
    for name, label in REQUIRED.items():
        value = output.get(name)
        empty = _amount(value) <= 0 if name == "total_amount" else value in (None, "")
        if empty:
            yield finding(MISSING, ERROR, f"{label} not found in the invoice.", field=name)
    currency = str(output.get("currency") or "").strip()
    source = context.inputs.get("raw_invoice")
    if not currency:
        yield finding(MISSING, ERROR, "Currency not found in the invoice.", field="currency")
    elif isinstance(source, str) and not _names_currency(source, currency):
        yield finding(
            MISSING, ERROR, f"Currency not found in the invoice (the reading says {currency}).", field="currency"
        )


def due_before_issue(output: dict[str, Any], context: CheckContext) -> Iterator[dict[str, Any]]:
    """The due date is not before the invoice date (ISO dates compare as strings)."""
    issued, due = output.get("invoice_date"), output.get("due_date")
    if isinstance(issued, str) and isinstance(due, str) and issued and due and due < issued:
        yield finding(
            "due_before_issue", ERROR, f"The due date {due} is before the invoice date {issued}.", field="due_date"
        )


def _normal(text: Any) -> str:
    """Case and spacing do not make another vendor or number."""
    return " ".join(str(text or "").lower().split())


def invoice_keys(output: dict[str, Any]) -> Iterator[str]:
    """Same vendor and number; or same vendor, total and date. Missing parts make no key."""
    vendor, number = _normal(output.get("vendor")), _normal(output.get("invoice_number"))
    total, issued = _amount(output.get("total_amount")), output.get("invoice_date")
    if vendor and number:
        yield f"{NUMBER_KEY}:{vendor}|{number}"
    if vendor and total > 0 and issued:
        yield f"{AMOUNT_DATE_KEY}:{vendor}|{total:.2f}|{issued}"


def duplicates_among(output_type: str) -> Check:
    """The check for an earlier item of `output_type`, of another run, with the same vendor and number, or
    vendor, total and date. Its lookup is one index seek per key (`selectors.items_sharing_keys`)."""

    def possible_duplicate(output: dict[str, Any], context: CheckContext) -> Iterator[dict[str, Any]]:
        keys = list(invoice_keys(output))
        earlier = items_sharing_keys(output_type=output_type, keys=keys, context=context)
        for key in keys:
            if key not in earlier:
                continue
            item, run = earlier[key]
            same = f"number {output.get('invoice_number')}" if key.startswith(NUMBER_KEY) else "total and date"
            yield finding(
                "possible_duplicate",
                ERROR,
                f"Possible duplicate: an earlier invoice has the same vendor and {same}.",
                field="invoice_number" if key.startswith(NUMBER_KEY) else "",
                link={"item": item, "run": run},
            )
            return  # one earlier copy is enough to stop and look

    return possible_duplicate


def register_invoice_checks(output_type: str) -> None:
    for check in (line_items_vs_total, quantity_times_price, missing_fields, due_before_issue):
        register_check(output_type, check)
    register_check(output_type, duplicates_among(output_type), name="possible_duplicate")
    register_match_keys(output_type, invoice_keys)
