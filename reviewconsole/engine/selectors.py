"""Reads for flow runs, shared by pages, the JSON API and the CLI."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from reviewconsole.engine.models import FlowRun, RunTransition, Step


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
