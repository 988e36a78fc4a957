"""The flows this console can run, declared by flow authors in `flows/`.

Flow modules import CrewAI, which takes seconds, so they are loaded on first
use rather than when Django starts: pages that never touch a flow stay fast.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from pydantic import BaseModel


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
) -> Callable[[type], type]:
    """Class decorator that makes a CrewAI Flow startable from the console."""

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
