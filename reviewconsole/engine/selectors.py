"""Reads for flow runs, shared by pages, the JSON API and the CLI."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, CharField, F, QuerySet, Value, When

from reviewconsole.engine.models import FlowRun, RunTransition, Step, StepKind


def run_list(*, flow_name: str = "", status: str = "") -> QuerySet[FlowRun]:
    """Runs newest first, optionally filtered; heavy JSON columns are deferred."""
    runs = FlowRun.objects.defer("inputs", "state", "result", "traceback").select_related("created_by")
    if flow_name:
        runs = runs.filter(flow_name=flow_name)
    if status:
        runs = runs.filter(status=status)
    return runs.order_by("-created_at")


def run_get(*, run_id: Any) -> FlowRun:
    """A run by id; raises FlowRun.DoesNotExist (or ValidationError for a malformed id)."""
    return FlowRun.objects.select_related("created_by").get(id=run_id)


def run_steps(*, run_id: Any) -> QuerySet[Step]:
    return Step.objects.filter(run_id=run_id).order_by("started_at", "id")


def _model_label() -> Case:
    """The model as people should read it: steps record the id the LLM reported ("demo" for the demo model).

    The LLM module imports CrewAI, so it is imported here and not at module
    level: the pages that call this load the flows anyway, while the API and
    the CLI, which share this module, need neither.
    """
    from reviewconsole.engine.llms import DEMO_MODEL_LABEL, DEMO_MODEL_NAME

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


def run_reviews(*, run_id: Any) -> QuerySet:
    from reviewconsole.reviews.models import ReviewItem

    return ReviewItem.objects.filter(run_id=run_id).select_related("decision__user").order_by("created_at")


def run_latest_step_status(*, run_id: Any) -> dict[str, str]:
    """Each method's latest status, for colouring the diagram."""
    latest: dict[str, str] = {}
    for method, status in run_steps(run_id=run_id).filter(kind="method").values_list("method", "status"):
        latest[method] = status
    return latest
