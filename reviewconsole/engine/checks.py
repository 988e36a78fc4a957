"""Checks that flows declare per output type: what is wrong with an output, shown to the reviewer.

A check is a function over the output (a JSON dict, as stored on the review item) and a `CheckContext` (the
run's inputs, the run, and the time before which other outputs count as "earlier"). It yields findings:

    {"check": name, "severity": "error" | "warning" | "info", "field": "line_items.2.amount" or "" for the
     whole output, "message": text, optional "link": {"item": id, "run": id}}

It lives in the engine, the lowest layer, so that `reviews` (item creation, edits, pages) and `autonomy` (the
gate) both run the same checks; a check itself may read higher layers (a duplicate lookup reads earlier review
items), since flows, which declare checks, sit above everything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

logger = logging.getLogger(__name__)

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)
# The check name of "this required field has no value": pages show such a field as "not found", not as
# its empty or default value.
MISSING = "missing"
# The check name of a check that raised (see `run_checks`).
CHECK_CRASHED = "check_failed_to_run"


@dataclass(frozen=True)
class CheckContext:
    """What a check may know besides the output."""

    inputs: Mapping[str, Any] = field(default_factory=dict)
    run_id: Any = None
    # The item being checked, when there is one (an edit): a duplicate lookup must not find the item itself.
    item_id: Any = None
    # Outputs created before this count as earlier; None for "now" (an output not stored yet).
    before: datetime | None = None


Check = Callable[[dict[str, Any], CheckContext], Iterable[dict[str, Any]]]
# Strings that identify an output for duplicate lookups ("vendor+number:acme|inv-1"); stored with each item.
MatchKeys = Callable[[dict[str, Any]], Iterable[str]]

_checks: dict[str, list[tuple[str, Check]]] = {}
_match_keys: dict[str, MatchKeys] = {}


def finding(
    check: str, severity: str, message: str, field: str = "", link: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One finding in the stored shape."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not '{severity}'")
    made: dict[str, Any] = {"check": check, "severity": severity, "field": field, "message": message}
    if link:
        made["link"] = {key: str(value) for key, value in link.items() if value is not None}
    return made


def register_check(output_type: str, check: Check, *, name: str | None = None) -> None:
    """Run `check` on every output of `output_type` (re-registering a name replaces it: module reloads)."""
    name = name or check.__name__
    kept = [(n, c) for n, c in _checks.get(output_type, []) if n != name]
    _checks[output_type] = [*kept, (name, check)]


def register_match_keys(output_type: str, keys: MatchKeys) -> None:
    """Declare how outputs of `output_type` are keyed for duplicate lookups."""
    _match_keys[output_type] = keys


def match_keys(output_type: str, output: Any) -> list[str]:
    """The output's duplicate-lookup keys, or none (no declaration, or not an object)."""
    keys = _match_keys.get(output_type)
    if keys is None or not isinstance(output, dict):
        return []
    return sorted(set(keys(output)))


def as_output(output: Any) -> Any:
    """A model as the JSON dict the checks read; anything else unchanged."""
    return output.model_dump(mode="json") if isinstance(output, BaseModel) else output


def run_checks(output_type: str, output: Any, context: CheckContext | None = None) -> list[dict[str, Any]]:
    """Every finding of the type's checks on `output`, errors first; [] for an output that is not an object.

    A check that raises yields an error finding naming it instead: a broken check must neither stop the flow
    nor the reviewer, and a check that could not run has not passed, so the reviewer (and the gate) must
    not read its silence as "nothing wrong".
    """
    output = as_output(output)
    if not isinstance(output, dict):
        return []
    context = context or CheckContext()
    found: list[dict[str, Any]] = []
    for name, check in _checks.get(output_type, []):
        try:
            found += [_normalized(name, item) for item in check(output, context)]
        except Exception as error:
            logger.exception("check %s of %s raised", name, output_type)
            message = f"The check '{name}' could not run ({type(error).__name__}); check this output by hand."
            found.append(finding(CHECK_CRASHED, ERROR, message))
    order = {severity: rank for rank, severity in enumerate(SEVERITIES)}
    return sorted(found, key=lambda item: order.get(item.get("severity"), len(order)))


def _normalized(name: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A check's finding in the stored shape whatever it returned: pages and the API read these fields."""
    severity = item.get("severity")
    link = item.get("link")
    return finding(
        str(item.get("check") or name),
        severity if severity in SEVERITIES else ERROR,
        str(item.get("message") or ""),
        field=str(item.get("field") or ""),
        link={key: link[key] for key in ("item", "run") if key in link} if isinstance(link, Mapping) else None,
    )


def has_errors(findings: Iterable[Mapping[str, Any]]) -> bool:
    return any(item.get("severity") == ERROR for item in findings)
