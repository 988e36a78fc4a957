"""Start-up check of a flow's routing, built on CrewAI's own structure projection.

CrewAI only warns when a router label has no listener, and a label returned at
run time that nobody listens to silently ends the flow. Both are authoring
mistakes, so they fail loudly here, naming the flow and the label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crewai.flow.visualization import build_flow_structure
from pydantic import BaseModel

from reviewconsole.engine.registry import FEEDBACK_OUTPUT_TYPE_KEY

if TYPE_CHECKING:
    from crewai.flow.visualization.types import FlowStructure

    from reviewconsole.engine.registry import FlowSpec


# A router branch with this label always pauses for a person.
HUMAN_REVIEW_LABEL = "human_review"


class FlowStructureError(ValueError):
    """A registered flow whose routing cannot work as written."""


def feedback_output_type(spec: FlowSpec, method_name: str, metadata: dict | None) -> str:
    """The output type a `@human_feedback` step without a provider sends to review.

    The one the step names in its metadata, else the flow's only declared type. A step that names none in a
    flow declaring several (or none) is ambiguous: FlowStructureError, which `check_flow_structure` raises at
    load time, so a run never pauses with a guessed type.
    """
    try:
        return _feedback_output_type(spec.output_types, method_name, metadata)
    except _AmbiguousOutputTypeError as error:
        raise FlowStructureError(f"Flow '{spec.name}': {error}") from None


class _AmbiguousOutputTypeError(ValueError):
    pass


def _feedback_output_type(declared: tuple[str, ...], method_name: str, metadata: dict | None) -> str:
    named = (metadata or {}).get(FEEDBACK_OUTPUT_TYPE_KEY)
    if named is not None:
        if named not in declared:
            raise _AmbiguousOutputTypeError(
                f"'{method_name}' names output type {named!r} in its @human_feedback metadata, which "
                f"register_flow(output_types=...) does not declare (declared: {', '.join(declared) or 'none'})"
            )
        return named
    if len(declared) == 1:
        return declared[0]
    if not declared:
        raise _AmbiguousOutputTypeError(
            f"'{method_name}' pauses for review with @human_feedback, but the flow declares no output type; "
            "add register_flow(output_types=[...])"
        )
    raise _AmbiguousOutputTypeError(
        f"'{method_name}' pauses for review with @human_feedback, but the flow declares several output types "
        f"({', '.join(declared)}); name one with "
        f'@human_feedback(..., metadata={{"{FEEDBACK_OUTPUT_TYPE_KEY}": "{declared[0]}"}})'
    )


def _trigger_strings(condition: object) -> set[str]:
    """Every plain name a listen/start condition refers to, at any depth."""
    if condition is None or isinstance(condition, bool):
        return set()
    if isinstance(condition, str):
        return {condition}
    if isinstance(condition, dict):
        names: set[str] = set()
        for value in condition.values():
            names |= _trigger_strings(value)
        return names
    if isinstance(condition, (list, tuple)):
        names = set()
        for value in condition:
            names |= _trigger_strings(value)
        return names
    return _trigger_strings(getattr(condition, "model_dump", lambda: None)())


def router_labels(structure: FlowStructure) -> dict[str, list[str]]:
    """The labels each router declares (through `emit=` or a Literal return type)."""
    return {name: list(structure["nodes"][name].get("router_events", [])) for name in structure["router_methods"]}


def listened_labels(flow_class: type) -> set[str]:
    """Every label the flow's listen and start conditions name that is not one of its methods."""
    definition = flow_class.flow_definition()
    listened: set[str] = set()
    for method in definition.methods.values():
        listened |= _trigger_strings(method.listen)
        if not isinstance(method.start, bool):
            listened |= _trigger_strings(method.start)
    return listened - set(definition.methods)


def router_returnable_labels(flow_class: type) -> dict[str, tuple[list[str], bool]]:
    """Per router: the labels it may return, and whether it declared them.

    A router declares its labels with `emit=` or a Literal return annotation. CrewAI's docs often write one
    without (`@router(step)` returning "success" or "failed"); such a router may return any label the flow
    listens to.
    """
    listened = sorted(listened_labels(flow_class))
    return {
        router: (labels, True) if labels else (listened, False)
        for router, labels in router_labels(build_flow_structure(flow_class)).items()
    }


def check_flow_structure(spec: FlowSpec) -> FlowStructure:
    """Raise FlowStructureError unless every route of the flow leads somewhere."""
    flow_class = spec.flow_class
    definition = flow_class.flow_definition()
    structure = build_flow_structure(flow_class)
    problems: list[str] = []

    if definition.persist is None or not definition.persist.enabled:
        problems.append("the class needs @persist() so its steps are checkpointed")

    listened = listened_labels(flow_class)
    emitted: set[str] = set()
    # A router that declares no labels may return any listened label (it is checked when it runs).
    undeclared_router = False
    for router, labels in router_labels(structure).items():
        undeclared_router = undeclared_router or not labels
        for label in labels:
            emitted.add(label)
            if label not in listened:
                problems.append(f"router '{router}' emits label '{label}' that no method listens to")

    for method_name, method in definition.methods.items():
        if HUMAN_REVIEW_LABEL in _trigger_strings(method.listen) and method.human_feedback is None:
            problems.append(
                f"'{method_name}' listens to '{HUMAN_REVIEW_LABEL}' but does not pause for review; "
                "decorate it with @human_feedback or @human_review"
            )

        feedback = method.human_feedback
        if feedback is not None and feedback.provider is None:
            try:
                _feedback_output_type(spec.output_types, method_name, feedback.metadata)
            except _AmbiguousOutputTypeError as error:
                problems.append(str(error))

    if not undeclared_router:
        for name in sorted(listened - emitted):
            problems.append(f"label '{name}' is listened to but no router emits it")

    state_type = getattr(flow_class, "_initial_state_t", None)
    if isinstance(state_type, type) and issubclass(state_type, BaseModel):
        missing = sorted(set(spec.input_model.model_fields) - set(state_type.model_fields))
        for field_name in missing:
            problems.append(f"input '{field_name}' has no field of the same name in the flow state")

    if problems:
        raise FlowStructureError(f"Flow '{spec.name}': " + "; ".join(problems))
    return structure
