"""Pages for flow runs: the run list, a run with its live progress, and starting a flow.

Each page is one template; an htmx request gets one of its inline partials
(`page.html#name`) from the same view, so permission checks and queries are
never repeated in a separate fragment view.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING, reswap, retarget
from django_htmx.middleware import HtmxDetails

from reviewconsole.engine import registry, selectors, services
from reviewconsole.engine.diagram import render_flow_svg
from reviewconsole.engine.forms import FlowInputForm, RunFilterForm
from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.selectors import VIEW_RUNS

START_RUNS = "engine.add_flowrun"
CHANGE_RUNS = "engine.change_flowrun"

RUNS_PER_PAGE = 50

# Seconds between refreshes of a run page: fast while a worker is on it, slow
# while it waits for a person (a decision on the queue page resumes it).
POLL_ACTIVE_SECONDS = 2
POLL_WAITING_SECONDS = 10

RETRYABLE = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})
CANCELLABLE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING_REVIEW})


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _require_perm(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


def _get_run_for_user(request: HttpRequest, run_id: UUID, *, perm: str = VIEW_RUNS) -> FlowRun:
    """The run, or 403 without the permissions (checked first, so ids don't leak), or 404 if missing or
    outside the user's output types."""
    _require_perm(request, VIEW_RUNS)
    _require_perm(request, perm)
    try:
        return selectors.run_get_for_user(user=request.user, run_id=run_id)
    except FlowRun.DoesNotExist:
        raise Http404("No such run") from None


def _get_flow_for_user(request: HttpRequest, name: str) -> registry.FlowSpec:
    """The flow, or 404 if missing or outside the user's output types."""
    try:
        return selectors.flow_get_for_user(user=request.user, name=name)
    except registry.FlowUnavailableError:
        raise
    except registry.UnknownFlowError:
        raise Http404(f"No flow named '{name}'") from None


def _wants_fragment(request: HtmxHttpRequest) -> bool:
    # A history restore after a cache miss needs the whole page, not a fragment.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _render_page(
    request: HtmxHttpRequest, template: str, partial: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """The page, or only its `partial` for an htmx request."""
    name = f"{template}#{partial}" if _wants_fragment(request) else template
    response = render(request, name, context, status=status)
    # The same URL answers with a page or a fragment: caches must keep both apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _pretty_json(value: Any) -> str:
    """Indented JSON for a <pre>; the template escapes it, since it holds LLM output."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _flow_diagram(spec: registry.FlowSpec, *, step_status: dict[str, str] | None) -> SafeString:
    from crewai.flow.visualization import build_flow_structure

    svg = render_flow_svg(build_flow_structure(spec.flow_class), step_status=step_status)
    # Safe to mark: render_flow_svg builds the SVG from the flow's code (method
    # names, router labels) and escapes every piece of text itself; no run data
    # other than the step statuses, which it reduces to class-name tokens.
    return mark_safe(svg)  # noqa: S308


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Reviewers start at their queue; everyone else at the runs."""
    if request.user.has_perm("reviews.review_item"):
        return redirect("reviews:queue")
    return redirect("engine:run_list")


@login_required
@require_GET
def run_list(request: HtmxHttpRequest) -> HttpResponse:
    _require_perm(request, VIEW_RUNS)
    flows = selectors.flows_visible_to(request.user)
    form = RunFilterForm(request.GET or None, flows=flows)
    flow_name, status = form.filters()
    runs = selectors.run_list(user=request.user, flow_name=flow_name, status=status)
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    titles = {spec.name: spec.title for spec in flows}
    context = {
        "form": form,
        "page": page,
        "rows": [(run, titles.get(run.flow_name, run.flow_name)) for run in page],
        "filtered": bool(flow_name or status),
        "can_start": request.user.has_perm(START_RUNS),
    }
    return _render_page(request, "engine/run_list.html", "run-table", context)


def _run_context(request: HttpRequest, run: FlowRun) -> dict[str, Any]:
    try:
        spec: registry.FlowSpec | None = registry.get_flow(run.flow_name)
    except registry.UnknownFlowError:
        spec = None  # the flow was removed since this run; show the run without its diagram
    can_change = request.user.has_perm(CHANGE_RUNS)
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        poll_seconds = POLL_ACTIVE_SECONDS
    elif run.status == RunStatus.WAITING_REVIEW:
        poll_seconds = POLL_WAITING_SECONDS
    else:
        poll_seconds = 0
    return {
        "run": run,
        "flow_title": spec.title if spec else run.flow_name,
        "flow_registered": spec is not None,
        "steps": list(selectors.run_timeline(run_id=run.id)),
        "transitions": list(selectors.run_transitions(run_id=run.id)),
        "reviews": list(selectors.run_pauses(run_id=run.id)),
        "inputs_json": _pretty_json(run.inputs),
        "state_json": _pretty_json(run.state) if run.state else "",
        "result_json": _pretty_json(run.result) if run.result is not None else "",
        "diagram": (_flow_diagram(spec, step_status=selectors.run_latest_step_status(run_id=run.id)) if spec else None),
        "can_retry": can_change and run.status in RETRYABLE,
        "can_cancel": can_change and run.status in CANCELLABLE,
        "poll_seconds": poll_seconds,
    }


@login_required
@require_GET
def run_detail(request: HtmxHttpRequest, run_id: UUID) -> HttpResponse:
    run = _get_run_for_user(request, run_id)
    # 286 tells htmx to stop polling; the finished state is still swapped in.
    status = HTMX_STOP_POLLING if _wants_fragment(request) and run.is_finished else 200
    return _render_page(request, "engine/run_detail.html", "run-live", _run_context(request, run), status=status)


def _run_action(
    request: HtmxHttpRequest, run_id: UUID, action: Callable[..., Any], done_message: Callable[[Any], str]
) -> HttpResponse:
    """Apply a retry or cancel; an htmx caller gets the refreshed run, a form post a redirect.

    `done_message` gets what the action returned and says what happened.
    """
    run = _get_run_for_user(request, run_id, perm=CHANGE_RUNS)
    try:
        message = done_message(action(run_id=run.id, actor=request.user))
    except services.RunStateError as error:
        if request.htmx:
            response = render(
                request, "engine/run_detail.html#run-alert", {"alert": str(error), "alert_level": "error"}, status=409
            )
            return reswap(retarget(response, "#run-alert"), "outerHTML")
        messages.error(request, str(error))
        return redirect("engine:run_detail", run_id=run.id)
    if request.htmx:
        run = selectors.run_get_for_user(user=request.user, run_id=run.id)
        context = {**_run_context(request, run), "alert": message, "alert_level": "success"}
        return render(request, "engine/run_detail.html#run-live", context)
    messages.success(request, message)
    return redirect("engine:run_detail", run_id=run.id)


# By the status a retry moved the run to.
RETRY_MESSAGES = {
    RunStatus.QUEUED: "Run queued again; finished steps will be replayed.",
    RunStatus.WAITING_REVIEW: "Run waiting for review again; its review item is back in the queue.",
}


@login_required
@require_POST
def run_retry(request: HtmxHttpRequest, run_id: UUID) -> HttpResponse:
    return _run_action(request, run_id, services.run_retry, lambda status: RETRY_MESSAGES[status])


@login_required
@require_POST
def run_cancel(request: HtmxHttpRequest, run_id: UUID) -> HttpResponse:
    return _run_action(request, run_id, services.run_cancel, lambda _: "Run cancelled.")


def _flow_list_context(request: HttpRequest) -> dict[str, Any]:
    # Field names are read here: a template would call the model class (it is callable).
    flows = [(spec, list(spec.input_model.model_fields)) for spec in selectors.flows_visible_to(request.user)]
    # A failed import describes the server's code: staff and managers see it, and only staff its traceback.
    failures = selectors.flow_load_failures_visible_to(
        request.user, modules=request.user.is_staff or request.user.has_perm(START_RUNS)
    )
    return {
        "flows": flows,
        "failures": failures,
        "show_tracebacks": request.user.is_staff,
        "can_start": request.user.has_perm(START_RUNS),
    }


@login_required
@require_GET
def flow_list(request: HttpRequest) -> HttpResponse:
    _require_perm(request, VIEW_RUNS)
    return render(request, "engine/flow_list.html", _flow_list_context(request))


@login_required
@require_http_methods(["GET", "POST"])
def flow_start(request: HttpRequest, name: str) -> HttpResponse:
    _require_perm(request, START_RUNS)
    try:
        spec = _get_flow_for_user(request, name)
    except registry.FlowUnavailableError as error:
        # The Flows page, which lists why, with the refusal on top.
        context = {**_flow_list_context(request), "alert": str(error)}
        return render(request, "engine/flow_list.html", context, status=409)
    posted = request.method == "POST"
    form = FlowInputForm(spec.input_model, request.POST if posted else None, request.FILES if posted else None)
    if form.is_valid():
        run = services.run_create(
            flow_name=spec.name, inputs=form.inputs, user=request.user, trigger="ui", documents=form.documents
        )
        messages.success(request, f"Started {spec.title}.")
        return redirect("engine:run_detail", run_id=run.id)
    context = {"spec": spec, "form": form, "diagram": _flow_diagram(spec, step_status=None)}
    return render(request, "engine/flow_start.html", context)
