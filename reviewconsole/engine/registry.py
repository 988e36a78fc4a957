"""The flows this console can run, declared by flow authors in `flows/`.

Flow modules import CrewAI, which takes seconds, so they are loaded on first
use rather than when Django starts: pages that never touch a flow stay fast.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import logging
import re
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from pydantic import BaseModel

logger = logging.getLogger(__name__)

# A review reason is stored as a code on review items and gate decisions (columns of this length).
REVIEW_REASON_MAX_LENGTH = 20
_REASON_CODE = re.compile(rf"[a-z][a-z0-9_]{{0,{REVIEW_REASON_MAX_LENGTH - 1}}}")
# A flow version is stored on gate decisions and policies (columns of this length); a source hash is this short.
FLOW_VERSION_MAX_LENGTH = 40
SOURCE_HASH_CHARS = 12


class UnknownFlowError(LookupError):
    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(message or f"Unknown flow '{name}'")
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
    # The version its author declared; empty: the flow's version is a hash of its module's source.
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadFailure:
    """A flow module that failed to import, or a registered flow that failed its structure check."""

    module: str
    error: str  # "ExceptionType: message", which names the flow for a structure error
    traceback: str
    # The flows known to be lost: the flow whose structure is broken, or those its module registered before
    # its import failed. An import failure usually loses flows nobody can name, whose output types are unknown.
    flows: tuple[FlowSpec, ...] = ()


class FlowUnavailableError(UnknownFlowError):
    """A flow that is registered but cannot run: its module failed to import, or its structure is broken."""

    def __init__(self, name: str, failure: LoadFailure) -> None:
        super().__init__(name, f"Flow '{name}' cannot be loaded: {failure.error}")
        self.failure = failure
        self.spec = next(spec for spec in failure.flows if spec.name == name)


# Every registration, as the decorator made it; `_flows` holds those that loaded and passed the check.
# `@human_feedback(metadata={"output_type": ...})` names the output type a step without a provider pauses with.
FEEDBACK_OUTPUT_TYPE_KEY = "output_type"

_specs: dict[str, FlowSpec] = {}
_flows: dict[str, FlowSpec] = {}
_failures: list[LoadFailure] = []
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
    version: str = "",
) -> Callable[[type], type]:
    """Class decorator that makes a CrewAI Flow startable from the console.

    `review_reasons` declares each reason the flow gives when it forces a review (`gate(..., reason=code)` or
    a review provider's `reason`) with the label people read, e.g. {"unreadable": "Unreadable after re-reading"}.
    A reason the flow does not declare (and that is not built in) is refused when the flow tries to use it.
    `output_types` may be left out when the flow pauses only through `@human_feedback` without a provider: the
    flow then loads with those `_plain_feedback_output_types` gives.
    `version` names the flow's version, to which the evidence about its outputs belongs (`flow_version`); left
    out, the version is a hash of the flow's module source, so any edit of the module makes a new version.
    """
    version = str(version).strip()
    if len(version) > FLOW_VERSION_MAX_LENGTH:
        raise ValueError(f"Flow '{name}': version must be at most {FLOW_VERSION_MAX_LENGTH} characters")
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
        flow_class = _durable(flow_class)
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
            version=version,
        )
        return flow_class

    return decorator


def _durable(flow_class: type) -> type:
    """The class with CrewAI's `@persist()` applied, unless the author applied it: every step is checkpointed.

    CrewAI's docs seldom write `@persist()`, and without it no step would be checkpointed, so a crash or a
    Retry would run every step again. It must be applied before the flow's definition is first built
    (`flow_definition()` caches it), so before anything else here reads the class.
    """
    if getattr(flow_class, "__flow_persistence_config__", None) is not None:
        return flow_class
    from crewai.flow.persistence import persist

    return persist()(flow_class)


def _plain_feedback_output_types(flow_name: str, flow_class: type) -> tuple[str, ...]:
    """The output types of a flow that declares none: those its provider-less `@human_feedback` steps pause with.

    A step naming one in its metadata (`{"output_type": ...}`) pauses with that; any other takes the flow's
    name. So a flow written as CrewAI's docs write it runs without `output_types=`, and reviewer scopes still
    cover every type it can send to review.
    """
    types: dict[str, None] = {}
    for method in flow_class.flow_definition().methods.values():
        feedback = method.human_feedback
        if feedback is not None and feedback.provider is None:
            types[(feedback.metadata or {}).get(FEEDBACK_OUTPUT_TYPE_KEY, flow_name)] = None
    return tuple(types)


def load_flows() -> dict[str, FlowSpec]:
    """Import the flow modules once, each on its own, and check every flow's structure; the flows that loaded.

    A module that fails to import, or a flow whose structure is broken, is kept as a `LoadFailure` (see
    `load_failures`) and logged once per process, with its traceback; the other flows load as usual. A qcluster
    loads them in its system check, before it forks its workers, so a cluster logs each failure once.

    The CrewAI persistence factory is registered first, because `@persist()`
    with no argument builds its persistence when the flow module is imported.
    """
    global _loaded
    if _loaded:
        return _flows
    with _load_lock:
        if _loaded:
            return _flows
        from crewai.flow.persistence.factory import set_flow_persistence_factory

        from reviewconsole.crewai_env import quiet_console
        from reviewconsole.engine.persistence import DjangoFlowPersistence

        quiet_console()
        set_flow_persistence_factory(DjangoFlowPersistence)
        failures = [failure for module in settings.FLOW_MODULES if (failure := _import(module))]
        lost = {spec.name for failure in failures for spec in failure.flows}
        flows = {name: spec for name, spec in _specs.items() if name not in lost}
        for name, spec in list(flows.items()):
            checked = _check(spec)
            if isinstance(checked, LoadFailure):
                failures.append(checked)
                del flows[name]
            else:
                flows[name] = checked
        for failure in failures:
            logger.error("flow module %s could not be loaded: %s\n%s", failure.module, failure.error, failure.traceback)
        _flows.clear()
        _flows.update(flows)
        _failures[:] = failures
        _loaded = True
    return _flows


def _failure(module: str, error: Exception, flows: list[FlowSpec]) -> LoadFailure:
    """The failure of `module`, called while `error` is being handled (its traceback is the current one)."""
    return LoadFailure(
        module=module, error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc(), flows=tuple(flows)
    )


def _import(module: str) -> LoadFailure | None:
    """Import one flow module; its failure (the flows it registered before failing are lost with it)."""
    before = set(_specs)
    try:
        importlib.import_module(module)
    except Exception as error:
        return _failure(module, error, [spec for name, spec in _specs.items() if name not in before])
    return None


def _check(spec: FlowSpec) -> FlowSpec | LoadFailure:
    """The flow as it loads (its output types completed), or why it cannot."""
    from reviewconsole.engine.structure import check_flow_structure

    try:
        if not spec.output_types:
            spec = replace(spec, output_types=_plain_feedback_output_types(spec.name, spec.flow_class))
        check_flow_structure(spec)
    except Exception as error:
        return _failure(spec.flow_class.__module__, error, [spec])
    return spec


def load_failures() -> list[LoadFailure]:
    """The flow modules and flows that could not be loaded, in FLOW_MODULES order, structure errors last."""
    load_flows()
    return list(_failures)


def all_flows() -> list[FlowSpec]:
    return sorted(load_flows().values(), key=lambda spec: spec.title)


def get_flow(name: str) -> FlowSpec:
    """The loaded flow `name`; FlowUnavailableError if it is registered but failed to load, else UnknownFlowError."""
    flows = load_flows()
    if name in flows:
        return flows[name]
    for failure in _failures:
        if any(spec.name == name for spec in failure.flows):
            raise FlowUnavailableError(name, failure)
    raise UnknownFlowError(name)


# --------------------------------------------------------------------------- versions


def source_version(source: str) -> str:
    """The version of a flow without a declared one: a short hex hash of its module's source text (pure).

    A hash of the text, not of the compiled code or the file's timestamp, so every process that loads the same
    source names the same version, and any edit, even a prompt's wording, names a new one.
    """
    return hashlib.sha256(source.encode()).hexdigest()[:SOURCE_HASH_CHARS]


@functools.cache
def _module_version(flow_class: type) -> str:
    # Keyed by the class: a module imported again (a test, a reload) gives a new class and is hashed afresh.
    try:
        source = inspect.getsource(sys.modules[flow_class.__module__])
    except (KeyError, OSError, TypeError):
        # No source to read (a class built at run time): such a flow has a version only if it declares one.
        return ""
    return source_version(source)


def flow_version(spec: FlowSpec) -> str:
    """The flow's version: the one declared with `register_flow(version=...)`, else its module's source hash."""
    return spec.version or _module_version(spec.flow_class)


def output_type_version(output_type: str) -> str:
    """The version of the flow that produces `output_type` now; "" when no loaded flow declares it.

    An output type comes from one flow. Should several declare it, its version names them all (a hash of each
    one's name and version), so runs of either record the same version and do not take turns at being "new".
    """
    specs = sorted(
        (spec for spec in load_flows().values() if output_type in spec.output_types), key=lambda spec: spec.name
    )
    if len(specs) <= 1:
        return flow_version(specs[0]) if specs else ""
    return source_version("\n".join(f"{spec.name}:{flow_version(spec)}" for spec in specs))
