"""How the offline demo model reads invoices, so the invoice flow behaves sensibly without a real LLM.

The demo model (``reviewconsole.llm.demo_model.DemoLLM``) answers a request for
``InvoiceData`` with ``demo_extract_invoice(prompt)``. It reads only the text
between ``<invoice>`` tags (the flow's tasks put the invoice there), and it has
two manners, as a person would:

- a first reading that trusts labelled lines only (``Vendor:``/``From:``,
  ``Invoice Number:``/``Invoice No.``, ``Total:``/``Amount due:``, ISO or
  written dates, ``a | b | c | d`` line-item tables);
- a careful reading, used when the task asks to re-read the invoice *line by
  line* (the flow's fallback crew does). It also accepts other separators
  (``Date 2026-10-01``, ``Total ..... 205.00``, column-aligned tables,
  ``2 x Gadgets @ 40.00 = 80.00``), numeric dates, an unlabelled total on a
  line of its own and a company name heading the invoice. Each value found
  only this way costs a little confidence: it is a guess.

Confidence starts high and falls for every missing or contradicting field, so
a clean invoice scores at least 0.9, an ambiguous layout gains on a careful
re-read, and text that is not an invoice stays low however it is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# The fallback crew's task asks for this; the demo model takes it as the cue for its careful manner.
CAREFUL_CUE = "line by line"

# The tags stand on lines of their own, so instructions that mention "<invoice> tags" are not mistaken for the block.
_INVOICE_BLOCK = re.compile(r"^[ \t]*<invoice>[ \t]*\n(.*?)^[ \t]*</invoice>[ \t]*$", re.DOTALL | re.MULTILINE)

# Longer alternatives first, so "Total due" is not read as "Total" followed by the value "due".
_LABELS = {
    "vendor": r"vendor|supplier|seller|billed?\s+from|sold\s+by|from",
    "invoice_number": r"invoice\s*(?:number|num\.?|no\.?|#)|inv\.?\s*(?:no\.?|#)",
    "invoice_date": r"invoice\s+date|issue\s+date|date\s+of\s+issue|issued(?:\s+on)?|date",
    "due_date": r"due\s+date|payment\s+due|pay\s+by|due(?:\s+(?:by|on))?",
    "total": r"total\s+due|amount\s+due|balance\s+due|grand\s+total|total\s+amount|invoice\s+total|total",
    "currency": r"currency",
}
# A first reading wants "Label: value"; after "No." or "#" a space is separator enough ("Invoice No. 17").
_STRICT_SEPARATOR = r"(?:[ \t]*:[ \t]*|(?<=[.#])[ \t]+)"
_LENIENT_SEPARATOR = r"(?:[ \t]*(?:[:=\-\u2013]|\.{2,})[ \t]*|[ \t]+)"  # \u2013: an en dash

# Thousands may be grouped by ",", "." or a space; two trailing digits after "." or "," are decimals.
# A minus sign is kept: discounts and credits are negative lines.
_AMOUNT = r"-?\d+(?:[., ]\d{3})*(?:[.,]\d{1,2})?"
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}
_CODES = ("USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN")
_CODE = rf"\b(?:{'|'.join(_CODES)})\b"
_CURRENCY = re.compile(rf"[$€£]|{_CODE}")


def _money(name: str) -> str:
    """An amount, captured as ``name``, with an optional currency symbol or code on either side."""
    return rf"(?:[$€£]|{_CODE})?[ \t]*(?P<{name}>{_AMOUNT})[ \t]*(?:{_CODE})?"


_PIPE_ITEM = re.compile(
    r"^[ \t]*(?P<desc>[^|\n]*[^|\d\s][^|\n]*?)[ \t]*\|"
    + r"[ \t]*\|".join(_money(name) for name in ("qty", "price", "amount"))
    + r"[ \t]*\|?[ \t]*$",
    re.MULTILINE,
)
_COLUMN_ITEM = re.compile(
    r"^[ \t]*(?P<desc>\S.*?\D)(?:\t|[ \t]{2,})"
    + r"(?:\t|[ \t]{2,})".join(_money(name) for name in ("qty", "price", "amount"))
    + r"[ \t]*$",
    re.MULTILINE,
)
_TIMES_ITEM = re.compile(
    rf"^[ \t]*[-*]?[ \t]*(?P<qty>{_AMOUNT})[ \t]*[x\u00d7][ \t]*(?P<desc>.+?)[ \t]*@[ \t]*"
    + _money("price")
    + r"[ \t]*=[ \t]*"
    + _money("amount")
    + r"[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_LONE_TOTAL = re.compile(r"^[ \t]*(?:[=\-_*]+[ \t]*)?" + _money("amount") + r"[ \t]*$", re.MULTILINE)
_COMPANY = re.compile(
    r"^[ \t]*(?P<name>[A-Z][\w&.,' -]*?\b(?:Ltd|Limited|LLC|Inc|GmbH|AG|SA|SARL|BV|Corp|Co)\.?)[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_TABLE_HEADINGS = {"description", "item", "items", "product", "service"}

# The reading's names that differ from the output's field paths.
_FIELD_PATHS = {"total": "total_amount"}

_STRICT_DATES = ("%Y-%m-%d", "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y")
_LENIENT_DATES = ("%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d-%m-%Y")

BASE_CONFIDENCE = 0.97
MISSING_PENALTY = 0.2  # each of vendor, number, invoice date, total
NO_ITEMS_PENALTY = 0.1
ITEMS_DISAGREE_PENALTY = 0.25  # the lines do not add up to the total
LINE_DISAGREE_PENALTY = 0.1  # a line's quantity x price is not its amount
CONFLICT_PENALTY = 0.2  # one field labelled twice with different values
DUE_BEFORE_ISSUE_PENALTY = 0.1
GUESS_PENALTY = 0.02  # each value only the careful reading found


@dataclass
class _Reading:
    """What one reading found, and how sure it can be of it."""

    values: dict[str, Any] = field(default_factory=dict)
    guessed: set[str] = field(default_factory=set)
    conflicts: set[str] = field(default_factory=set)
    # Where each value was read: field path -> 1-based line numbers of the invoice text.
    lines: dict[str, list[int]] = field(default_factory=dict)


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def invoice_text(prompt_text: str) -> str:
    """The invoice inside the prompt (the last ``<invoice>`` block), or the whole text when untagged."""
    blocks = _INVOICE_BLOCK.findall(prompt_text)
    return blocks[-1] if blocks else prompt_text


def _number(text: str) -> float:
    """An amount as written: "1,234.50", "1.234,50" and "1 234,50" are all 1234.5."""
    text = re.sub(r"\s", "", text)
    decimals = re.search(r"[.,](\d{1,2})$", text)
    whole = text[: decimals.start()] if decimals else text
    return float(re.sub(r"[.,]", "", whole) + (f".{decimals.group(1)}" if decimals else ""))


def _date(text: str | None, *, lenient: bool) -> date | None:
    if not text:
        return None
    candidate = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", text.strip().rstrip("."))
    for fmt in _STRICT_DATES + (_LENIENT_DATES if lenient else ()):
        try:
            return datetime.strptime(candidate, fmt).date()
        except ValueError:
            continue
    return None


def _labelled_values(text: str, label: str, separator: str) -> list[tuple[str, int]]:
    """Each labelled value with its line."""
    pattern = rf"^[ \t]*(?:{label})\.?{separator}(?P<value>\S.*?)[ \t]*$"
    return [(m["value"], _line_of(text, m.start())) for m in re.finditer(pattern, text, re.IGNORECASE | re.MULTILINE)]


def _convert(name: str, raw: str, *, lenient: bool) -> Any:
    """A labelled value as the field's type, or None when it does not read as one."""
    if name in ("invoice_date", "due_date"):
        return _date(raw, lenient=lenient)
    if name == "total":
        match = re.search(_AMOUNT, raw)
        return _number(match.group(0)) if match else None
    if name == "currency":
        match = re.search(_CODE, raw.upper())
        return match.group(0) if match else None
    return raw


def _read_field(reading: _Reading, text: str, name: str, *, careful: bool) -> None:
    """First the strict form; a careful reading falls back to the lenient one and marks the value a guess."""
    passes = [(_STRICT_SEPARATOR, False)] + ([(_LENIENT_SEPARATOR, True)] if careful else [])
    for separator, lenient in passes:
        found = [
            (_convert(name, raw, lenient=lenient), line)
            for raw, line in _labelled_values(text, _LABELS[name], separator)
        ]
        found = [(value, line) for value, line in found if value not in (None, "")]
        values = [value for value, _ in found]
        if values:
            reading.values[name] = values[0]
            reading.lines[_FIELD_PATHS.get(name, name)] = [found[0][1]]
            if len(set(values)) > 1:
                reading.conflicts.add(name)
            if lenient:
                reading.guessed.add(name)
            return


def _line_items(text: str, *, careful: bool) -> tuple[list[dict[str, Any]], list[int], bool]:
    """Line items, the line of each, and whether only the careful reading's layouts produced them."""
    patterns = [(_PIPE_ITEM, False)] + ([(_COLUMN_ITEM, True), (_TIMES_ITEM, True)] if careful else [])
    for pattern, guessed in patterns:
        matches = [m for m in pattern.finditer(text) if m["desc"].strip(" \t-*").lower() not in _TABLE_HEADINGS]
        items = [
            {
                "description": match["desc"].strip(" \t-*"),
                "quantity": _number(match["qty"]),
                "unit_price": _number(match["price"]),
                "amount": _number(match["amount"]),
            }
            for match in matches
        ]
        if items:
            return items, [_line_of(text, match.start()) for match in matches], guessed
    return [], [], False


def _currency(text: str, labelled: str | None) -> tuple[str, bool]:
    """The currency and whether the invoice names more than one."""
    named = {_SYMBOLS.get(symbol, symbol) for symbol in _CURRENCY.findall(text)}
    if labelled:
        named.add(labelled)
    # No default: an invoice that names no currency reads as none, for the reviewer to see as "not found".
    chosen = labelled or (sorted(named)[0] if len(named) == 1 else "")
    return chosen, len(named) > 1


def _read(text: str, *, careful: bool) -> _Reading:
    reading = _Reading()
    for name in _LABELS:
        _read_field(reading, text, name, careful=careful)
    if careful and "vendor" not in reading.values and (company := _COMPANY.search(text)):
        reading.values["vendor"] = company["name"].strip()
        reading.lines["vendor"] = [_line_of(text, company.start())]
        reading.guessed.add("vendor")
    if careful and "total" not in reading.values:
        lone = list(_LONE_TOTAL.finditer(text))
        if lone:
            reading.values["total"] = _number(lone[-1]["amount"])
            reading.lines["total_amount"] = [_line_of(text, lone[-1].start())]
            reading.guessed.add("total")
    items, item_lines, items_guessed = _line_items(text, careful=careful)
    reading.values["line_items"] = items
    for index, line in enumerate(item_lines):
        reading.lines[f"line_items.{index}"] = [line]
    if items_guessed:
        reading.guessed.add("line_items")
    currency, mixed = _currency(text, reading.values.get("currency"))
    reading.values["currency"] = currency
    if currency and "currency" not in reading.lines and (named := _CURRENCY.search(text)):
        reading.lines["currency"] = [_line_of(text, named.start())]
    if mixed:
        reading.conflicts.add("currency")
    return reading


def _confidence(reading: _Reading) -> float:
    values = reading.values
    confidence = BASE_CONFIDENCE
    required = ("vendor", "invoice_number", "invoice_date", "total")
    confidence -= MISSING_PENALTY * sum(1 for name in required if name not in values)
    items = values["line_items"]
    if not items:
        confidence -= NO_ITEMS_PENALTY
    elif "total" in values and abs(sum(item["amount"] for item in items) - values["total"]) > 0.01:
        confidence -= ITEMS_DISAGREE_PENALTY
    if any(abs(item["quantity"] * item["unit_price"] - item["amount"]) > 0.01 for item in items):
        confidence -= LINE_DISAGREE_PENALTY
    issued, due = values.get("invoice_date"), values.get("due_date")
    if issued and due and due < issued:
        confidence -= DUE_BEFORE_ISSUE_PENALTY
    confidence -= CONFLICT_PENALTY * len(reading.conflicts)
    confidence -= GUESS_PENALTY * len(reading.guessed)
    return round(min(max(confidence, 0.05), 0.99), 2)


def demo_extract_invoice(prompt_text: str) -> dict[str, Any]:
    """The demo model's ``InvoiceData`` answer to a prompt: deterministic, no network."""
    text = invoice_text(prompt_text)
    # The cue is looked for in the instructions only: an invoice saying "line by line" changes nothing.
    careful = CAREFUL_CUE in prompt_text.replace(text, "").lower()
    reading = _read(text, careful=careful)
    values = reading.values
    return {
        "vendor": values.get("vendor", ""),
        "invoice_number": values.get("invoice_number", ""),
        "invoice_date": values["invoice_date"].isoformat() if values.get("invoice_date") else None,
        "due_date": values["due_date"].isoformat() if values.get("due_date") else None,
        "currency": values["currency"],
        "line_items": values["line_items"],
        "total_amount": values.get("total", 0.0),
        "confidence": _confidence(reading),
        "source_lines": [{"field": path, "lines": lines} for path, lines in reading.lines.items()],
    }
