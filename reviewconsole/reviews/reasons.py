"""Why an item was sent to review: the built-in reasons and the ones flows declare.

A reason is an open code. The gate gives its own (`low_confidence`, `audit_sample`, `always_review`); a flow
forcing a review gives a built-in one (`high_value`, `flow_requested`) or one it declares in
`register_flow(review_reasons={code: label})`. An undeclared code is refused when a flow tries to use it, so
every stored reason has a label, and one stored before its flow stopped declaring it still reads as a code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.text import capfirst

from reviewconsole.engine import registry
from reviewconsole.engine.context import current_execution
from reviewconsole.reviews.models import ReviewReason

BUILT_IN: dict[str, str] = {reason.value: str(reason.label) for reason in ReviewReason}


class UndeclaredReasonError(ValueError):
    """A flow sent an output to review with a reason it does not declare."""


@dataclass(frozen=True)
class Reason:
    code: str
    label: str
    # The flows that declare it; empty for a built-in reason.
    flows: tuple[str, ...] = ()


def review_reasons(flows: Iterable[registry.FlowSpec] | None = None) -> dict[str, Reason]:
    """Every known reason by code: the built-in ones first, then the flows' own in code order.

    `flows` limits the declared reasons to those flows' (a reader limited to some output types must not
    learn the other flows); every registered flow by default. A flow cannot relabel a built-in reason; two
    flows declaring one code share the first flow's label.
    """
    reasons = {code: Reason(code, label) for code, label in BUILT_IN.items()}
    declared: dict[str, Reason] = {}
    for spec in registry.all_flows() if flows is None else flows:
        for code, label in spec.review_reasons.items():
            if code in reasons:
                continue
            known = declared.get(code)
            declared[code] = Reason(code, known.label if known else label, (*(known.flows if known else ()), spec.name))
    return {**reasons, **dict(sorted(declared.items()))}


def reason_label(code: str) -> str:
    """The label people read for `code`; a code nobody declares (any more) is shown humanized."""
    reason = review_reasons().get(code)
    return reason.label if reason is not None else capfirst(code.replace("_", " ").strip())


def reason_check(reason: str) -> None:
    """Raise UndeclaredReasonError unless `reason` is built in or declared by the flow being run.

    Outside a run (a direct call), any flow's declaration will do.
    """
    if reason in BUILT_IN:
        return
    execution = current_execution.get()
    flow_name = execution.flow_name if execution is not None and execution.flow_name else ""
    specs = [registry.get_flow(flow_name)] if flow_name else registry.all_flows()
    if any(reason in spec.review_reasons for spec in specs):
        return
    who = f"flow '{flow_name}' does not declare it" if flow_name else "no registered flow declares it"
    raise UndeclaredReasonError(
        f"Review reason '{reason}' is not built in and {who}; declare it with its label, e.g. "
        f"register_flow(..., review_reasons={{'{reason}': 'What a reviewer should read'}})"
    )
