"""Reads for flow runs, shared by pages, the JSON API and the CLI.

Who sees which run. A run belongs to the output types its flow declares
(`FlowSpec.output_types`). A user limited to some output types sees a flow, and
its runs, only if every type the flow declares is within their limit, so no
output of another type is ever shown to them; a flow that declares no type is
seen only by unlimited users. Every page and endpoint that shows a run or a
flow reads through `runs_visible_to` and `flows_visible_to`; anything outside
them is answered like something that does not exist (404).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from django.db.models import Case, CharField, Count, F, Max, QuerySet, Value, When

from reviewconsole.engine import registry
from reviewconsole.engine.models import FlowRun, RunDocument, RunTransition, Step, StepKind, WorkerHeartbeat
from reviewconsole.engine.pause_handler import pause_handler

VIEW_RUNS = "engine.view_flowrun"

OutputTypeScope = Callable[[Any], Collection[str] | None]
_output_type_scope: OutputTypeScope | None = None


def register_output_type_scope(scope: OutputTypeScope) -> None:
    """Install the answer to "which output types is this user limited to?" (None: not limited).

    The engine knows runs and the types their flows declare, but who may see which
    type is decided above it (the reviews app's reviewer scopes). That app registers
    its answer here from its `AppConfig.ready()`, so the engine asks without importing
    it. Without a registered answer nobody is limited: no app defines a limit then.
    """
    global _output_type_scope
    _output_type_scope = scope


def output_types_visible_to(user: Any) -> frozenset[str] | None:
    """The output types `user` is limited to, or None for every type."""
    if _output_type_scope is None:
        return None
    scope = _output_type_scope(user)
    return None if scope is None else frozenset(scope)


def _within(spec: registry.FlowSpec, allowed: frozenset[str] | None) -> bool:
    return allowed is None or (bool(spec.output_types) and set(spec.output_types) <= allowed)


def flows_visible_to(user: Any) -> list[registry.FlowSpec]:
    """The registered flows whose outputs `user` may all see, by title (loads the flows on first use)."""
    allowed = output_types_visible_to(user)
    return [spec for spec in registry.all_flows() if _within(spec, allowed)]


def flow_get_for_user(*, user: Any, name: str) -> registry.FlowSpec:
    """A flow `user` may see; raises UnknownFlowError for one outside their output types, as for a missing one,
    and FlowUnavailableError for one of theirs that failed to load."""
    allowed = output_types_visible_to(user)
    try:
        spec = registry.get_flow(name)
    except registry.FlowUnavailableError as error:
        if not _within(error.spec, allowed):
            raise registry.UnknownFlowError(name) from None
        raise
    if not _within(spec, allowed):
        raise registry.UnknownFlowError(name)
    return spec


def flow_load_failures_visible_to(user: Any, *, modules: bool) -> list[registry.LoadFailure]:
    """The load failures of flows `user` may see (a broken structure; a module that failed after registering
    them), and with `modules` every failure to a user limited to no output type: a module that fails to import
    usually takes flows with it that nobody can name, nor the types they would send to review."""
    allowed = output_types_visible_to(user)
    return [
        failure
        for failure in registry.load_failures()
        if (modules and allowed is None) or (failure.flows and all(_within(spec, allowed) for spec in failure.flows))
    ]


def runs_visible_to(user: Any) -> QuerySet[FlowRun]:
    """Every run `user` may see: none without the view permission, else those of their visible flows.

    A limited user's runs are filtered by flow name, so a run of a flow since
    removed from the registry is seen only by unlimited users.
    """
    if not user.has_perm(VIEW_RUNS):
        return FlowRun.objects.none()
    if output_types_visible_to(user) is None:
        return FlowRun.objects.all()
    return FlowRun.objects.filter(flow_name__in=[spec.name for spec in flows_visible_to(user)])


def run_is_visible_to(user: Any, run: FlowRun) -> bool:
    """Whether `run`, already fetched, is one of `runs_visible_to(user)` (asked without a query)."""
    if not user.has_perm(VIEW_RUNS):
        return False
    allowed = output_types_visible_to(user)
    if allowed is None:
        return True
    try:
        return _within(registry.get_flow(run.flow_name), allowed)
    except registry.UnknownFlowError:
        return False


def run_list(*, user: Any, flow_name: str = "", status: str = "") -> QuerySet[FlowRun]:
    """The runs `user` may see, newest first, optionally filtered; heavy JSON columns are deferred."""
    runs = runs_visible_to(user).defer("inputs", "state", "result", "traceback").select_related("created_by")
    if flow_name:
        runs = runs.filter(flow_name=flow_name)
    if status:
        runs = runs.filter(status=status)
    return runs.order_by("-created_at")


def run_get(*, run_id: Any) -> FlowRun:
    """A run by id, whoever asks (the CLI); raises FlowRun.DoesNotExist (or ValidationError for a malformed id)."""
    return FlowRun.objects.select_related("created_by").get(id=run_id)


def run_get_for_user(*, user: Any, run_id: Any) -> FlowRun:
    """A run `user` may see; raises FlowRun.DoesNotExist for one they may not, exactly as for a missing one."""
    return runs_visible_to(user).select_related("created_by").get(id=run_id)


def run_steps(*, run_id: Any) -> QuerySet[Step]:
    return Step.objects.filter(run_id=run_id).order_by("started_at", "id")


def _model_label() -> Case:
    """The model as people should read it: steps record the id the LLM reported ("demo" for the demo model).

    The LLM module imports CrewAI, so it is imported here and not at module
    level: the pages that call this load the flows anyway, while the API and
    the CLI, which share this module, need neither.
    """
    from reviewconsole.llm.demo_model import DEMO_MODEL_LABEL, DEMO_MODEL_NAME

    demo = When(model=DEMO_MODEL_NAME, then=Value(DEMO_MODEL_LABEL))
    return Case(demo, default=F("model"), output_field=CharField())


def run_timeline(*, run_id: Any) -> QuerySet[Step]:
    """A run's steps for its page, each with `model_label`, so nobody takes a demo run's output for a real model's."""
    return run_steps(run_id=run_id).annotate(model_label=_model_label())


def run_models(*, run_id: Any, before: Any = None) -> list[str]:
    """Labels of the models a run's LLM calls used (up to `before`, a datetime), in order of first use."""
    steps = Step.objects.filter(run_id=run_id, kind=StepKind.LLM).exclude(model="")
    if before is not None:
        steps = steps.filter(started_at__lt=before)
    labels = steps.annotate(model_label=_model_label()).order_by("started_at", "id")
    return list(dict.fromkeys(labels.values_list("model_label", flat=True)))


def run_transitions(*, run_id: Any) -> QuerySet[RunTransition]:
    return RunTransition.objects.filter(run_id=run_id).select_related("actor").order_by("at", "id")


def run_pauses(*, run_id: Any) -> QuerySet:
    """The records of the run's pauses (review items, with their decisions), oldest first."""
    return pause_handler().run_pauses(run_id=run_id)


def run_latest_step_status(*, run_id: Any) -> dict[str, str]:
    """Each method's latest status, for colouring the diagram."""
    latest: dict[str, str] = {}
    for method, status in run_steps(run_id=run_id).filter(kind="method").values_list("method", "status"):
        latest[method] = status
    return latest


def newest_worker_heartbeat() -> datetime | None:
    """When a qcluster worker process last said it was alive (None: never, or over a day ago)."""
    return WorkerHeartbeat.objects.aggregate(newest=Max("beat_at"))["newest"]


def run_counts_by_status() -> dict[str, int]:
    """How many runs are in each status (`run_status_created_idx`, read from the index alone)."""
    rows = FlowRun.objects.order_by().values_list("status").annotate(count=Count("id"))
    return dict(rows)


def steps_finished_since(since: datetime) -> QuerySet[Step]:
    """Steps that finished since `since`, with a duration (`step_finished_idx` bounds it to the window)."""
    return Step.objects.filter(finished_at__gte=since, duration_ms__isnull=False)


def run_documents(*, run_id: Any) -> list[RunDocument]:
    """The original files a run's inputs were read from, by input name."""
    return list(RunDocument.objects.filter(run_id=run_id).order_by("input_name"))


def run_document_get(*, run_id: Any, document_id: Any) -> RunDocument:
    """One of a run's documents; raises RunDocument.DoesNotExist for another run's, as for a missing one."""
    return RunDocument.objects.get(run_id=run_id, id=document_id)
