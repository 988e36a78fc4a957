"""Summary fields that flows declare per output type: the few values that say what an output is.

A queue row, a bulk selection and the search read them ("Acme Supplies Ltd · INV-1042 · 205.00 EUR · due
2026-10-31") instead of an id. Like checks, the declaration lives in the engine, the lowest layer, and knows
nothing of review items: `summarize` turns an output (a JSON dict) into labelled display strings, and the
reviews app stores them on the item when it is created.

A value the model did not find reads "not found", never an empty string, a 0 or a default: the output's
findings name such fields (`checks.MISSING`), and an absent or empty value is not found either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reviewconsole.engine.checks import MISSING

NOT_FOUND = "not found"
# A type without a declaration shows this many of its first scalar fields.
FALLBACK_FIELDS = 3
# Scalar fields that describe the reading rather than the output.
FALLBACK_SKIPPED = frozenset({"confidence", "id"})
# A long text (an article's body) is cut to this in a row.
MAX_SHOWN_CHARS = 120
TEXT, MONEY = "text", "money"


@dataclass(frozen=True)
class SummaryField:
    """One value a row shows: the output's field at `path` (dotted), under `label`.

    `kind` MONEY shows a number with two decimals and the currency read from the field at `currency`.
    """

    path: str
    label: str
    kind: str = TEXT
    currency: str = ""


_summaries: dict[str, tuple[SummaryField, ...]] = {}


def register_summary(output_type: str, fields: Sequence[SummaryField]) -> None:
    """Declare the summary fields of `output_type` (registering again replaces them: module reloads)."""
    if not fields:
        raise ValueError(f"the summary of {output_type} needs at least one field")
    _summaries[output_type] = tuple(fields)


def _at(output: Any, path: str) -> Any:
    value = output
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _shown(value: Any) -> str:
    text = str(value).strip()
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1].rstrip() + "…"


def _money(amount: Any, currency: Any) -> str | None:
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return None
    code = str(currency or "").strip()
    return f"{amount:,.2f} {code}" if code else f"{amount:,.2f} (currency {NOT_FOUND})"


def _fallback(output: dict[str, Any]) -> tuple[SummaryField, ...]:
    scalars = [
        key
        for key, value in output.items()
        if key not in FALLBACK_SKIPPED and isinstance(value, str | int | float) and not isinstance(value, bool)
    ]
    return tuple(SummaryField(key, key.replace("_", " ").capitalize()) for key in scalars[:FALLBACK_FIELDS])


def summarize(output_type: str, output: Any, findings: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The output's summary: [{"label", "value", "found"}], `value` a display string ("not found" when not
    `found`). The type's declared fields, or its first scalar fields; none for an output that is not an object."""
    if not isinstance(output, dict):
        return []
    missing = {str(item.get("field") or "") for item in findings if item.get("check") == MISSING}
    shown = []
    for spec in _summaries.get(output_type) or _fallback(output):
        value = _at(output, spec.path)
        if spec.kind == MONEY:
            currency = None if spec.currency in missing else _at(output, spec.currency)
            text = None if spec.path in missing else _money(value, currency)
        else:
            empty = value in (None, "") or isinstance(value, dict | list)
            text = None if spec.path in missing or empty else _shown(value)
        shown.append({"label": spec.label, "value": text if text is not None else NOT_FOUND, "found": text is not None})
    return shown
