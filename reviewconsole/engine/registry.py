"""The flows this console can run, declared by flow authors in `flows/`.

Flow modules import CrewAI, which takes seconds, so they are loaded on first
use rather than when Django starts: pages that never touch a flow stay fast.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from pydantic import BaseModel

# A review reason is stored as a code on review items and gate decisions (columns of this length).
REVIEW_REASON_MAX_LENGTH = 20
_REASON_CODE = re.compile(rf"[a-z][a-z0-9_]{{0,{REVIEW_REASON_MAX_LENGTH - 1}}}")


class UnknownFlowError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown flow '{name}'")
        self.name = name


@dataclass(frozen=True)
class FlowSpec:
    """A registered flow: how to find it, start it and what it sends to review."""

    name: str
    title: str
    flow_class: type
    input_model: type[BaseModel]
    output_types: tuple[str, ...] = ()
    description: str = ""
    # The reasons, beyond the built-in ones, for which the flow sends an output to review: code → label.
    review_reasons: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


_specs: dict[str, FlowSpec] = {}
_loaded = False
_load_lock = threading.Lock()


def register_flow(
    *,
    name: str,
    title: str,
    inputs: type[BaseModel],
    output_types: tuple[str, ...] | list[str] = (),
    description: str = "",
    review_reasons: Mapping[str, str] | None = None,
) -> Callable[[type], type]:
    """Class decorator that makes a CrewAI Flow startable from the console.

    `review_reasons` declares each reason the flow gives when it forces a review (`gate(..., reason=code)` or
    a review provider's `reason`) with the label people read, e.g. {"unreadable": "Unreadable after re-reading"}.
    A reason the flow does not declare (and that is not built in) is refused when the flow tries to use it.
    """
    reasons = dict(review_reasons or {})
    for code, label in reasons.items():
        if not isinstance(code, str) or not _REASON_CODE.fullmatch(code):
            raise ValueError(
                f"Flow '{name}': review reason {code!r} must be a lowercase code (letters, digits, underscores) "
                f"of at most {REVIEW_REASON_MAX_LENGTH} characters"
            )
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"Flow '{name}': review reason '{code}' needs a label")

    def decorator(flow_class: type) -> type:
        existing = _specs.get(name)
        if existing is not None and existing.flow_class.__qualname__ != flow_class.__qualname__:
            raise ValueError(f"Flow name '{name}' is registered twice ({existing.flow_class.__qualname__})")
        _specs[name] = FlowSpec(
            name=name,
            title=title,
            flow_class=flow_class,
            input_model=inputs,
            output_types=tuple(output_types),
            description=description or (flow_class.__doc__ or "").strip(),
            review_reasons=reasons,
        )
        return flow_class

    return decorator


def load_flows() -> dict[str, FlowSpec]:
    """Import the flow modules once and check every flow's structure.

    The CrewAI persistence factory is registered first, because `@persist()`
    with no argument builds its persistence when the flow module is imported.
    """
    global _loaded
    if _loaded:
        return _specs
    with _load_lock:
        if _loaded:
            return _specs
        from crewai.flow.persistence.factory import set_flow_persistence_factory

        from reviewconsole.crewai_env import quiet_console
        from reviewconsole.engine.persistence import DjangoFlowPersistence
        from reviewconsole.engine.structure import check_flow_structure

        quiet_console()
        set_flow_persistence_factory(DjangoFlowPersistence)
        for module in settings.FLOW_MODULES:
            importlib.import_module(module)
        for spec in _specs.values():
            check_flow_structure(spec)
        _loaded = True
    return _specs


def all_flows() -> list[FlowSpec]:
    return sorted(load_flows().values(), key=lambda spec: spec.title)


def get_flow(name: str) -> FlowSpec:
    try:
        return load_flows()[name]
    except KeyError:
        raise UnknownFlowError(name) from None
