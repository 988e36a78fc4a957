"""Autonomy pages: the overview dashboard and one page per output type, with the manager's controls.

Who sees what. Managers (`autonomy.manage_autonomy`, superusers) see every type and may change
policies. Reviewers see the dashboards of the types they may review, read-only. A manager limited to
some output types (ReviewerScope rows, the limit that also hides runs of other types) sees and changes
those types only. Everyone else gets 403. Every page fetches its policy through `policy_get_for_user`,
so no view forgets a check.

One view serves a page and its fragments, picked by the htmx target: `#what-if` (the preview of a
threshold), `#trend-panel` (the day/week toggle). A policy change is a POST to the type's page; it
goes through `policy_update`, which records who, when, from→to and why.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import reswap, retarget
from django_htmx.middleware import HtmxDetails

from reviewconsole.autonomy import charts, selectors
from reviewconsole.autonomy.evidence import Stratum
from reviewconsole.autonomy.forms import CarryOverForm, ExportForm, PolicyForm, WhatIfForm
from reviewconsole.autonomy.guard import guard_state
from reviewconsole.autonomy.models import AutonomyPolicy, PolicyChange
from reviewconsole.autonomy.recommendation import recommend, type_strata, what_if
from reviewconsole.autonomy.rollup import local_zone
from reviewconsole.autonomy.services import (
    PolicyError,
    policy_ensure,
    policy_evidence_carry_over,
    policy_update,
    policy_version_observe,
)
from reviewconsole.autonomy.versions import VersionView, version_label, version_param, version_view, versions_left
from reviewconsole.autonomy.windows import WINDOW_KEYS, Window, window_for
from reviewconsole.reviews import reliability_selectors
from reviewconsole.reviews.selectors import scoped_output_types

MANAGE_PERM = "autonomy.manage_autonomy"
REVIEW_PERM = "reviews.review_item"
# The overview's sparklines cover this many days.
SPARK_DAYS = 30
# Reviewer throughput and decision times on a type's page cover this many days.
THROUGHPUT_DAYS = 30
HISTORY_ROWS = 50
# The export form on a type's page offers the decisions of this many days, today included.
EXPORT_DEFAULT_DAYS = 30
PERIODS = ("day", "week")
# The evidence window a type's page reads when none is asked for; the estimate of auto-processed outputs reads
# the recent one then, so a drift shows instead of being averaged away over all time.
DEFAULT_WINDOW = "all"
ESTIMATE_WINDOW = "recent"
WINDOW_CHOICES = (("all", "All time"), ("since_change", "Since last change"), ("recent", "Recent"))


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


# ---------------------------------------------------------------- access


def is_manager(user: Any) -> bool:
    return bool(user.is_authenticated and user.has_perm(MANAGE_PERM))


def may_see_dashboards(user: Any) -> bool:
    return is_manager(user) or bool(user.is_authenticated and user.has_perm(REVIEW_PERM))


def may_see_type(user: Any, output_type: str) -> bool:
    """Managers and reviewers see the types within their output-type limit (for a reviewer: the types they review)."""
    allowed = scoped_output_types(user)
    return may_see_dashboards(user) and (allowed is None or output_type in allowed)


def declared_output_types() -> set[str]:
    """Output types the registered flows declare (loads the flows, and with them CrewAI, on first use)."""
    from reviewconsole.engine import registry

    return {output_type for spec in registry.all_flows() for output_type in spec.output_types}


def policy_get_for_user(user: Any, output_type: str) -> AutonomyPolicy:
    """The type's policy, or PermissionDenied (403) or Http404.

    Managers may see any type within their output-type limit, reviewers the types they may review
    (checked before the type is looked up, so the answer does not tell them which types exist). A
    type with no policy yet exists if a registered flow declares it; its policy is then created with
    the defaults, as the gate would on the first output.
    """
    if not may_see_type(user, output_type):
        raise PermissionDenied("You may not see the autonomy of this output type.")
    policy = AutonomyPolicy.objects.filter(output_type=output_type).first()
    if policy is not None:
        return policy
    if output_type in declared_output_types():
        return policy_ensure(output_type=output_type)
    raise Http404(f"No output type named '{output_type}'")


def policy_observed(policy: AutonomyPolicy) -> AutonomyPolicy:
    """The policy once it has seen the version of the type's flow this process loaded: a page showing a type
    after a deploy starts a new version at full review as a worker would (`policy_version_observe`)."""
    from reviewconsole.engine.registry import output_type_version

    return policy_version_observe(policy=policy, version=output_type_version(policy.output_type))


def _version(
    request: HttpRequest, policy: AutonomyPolicy, left: dict[str, tuple[str, ...]] | None = None
) -> VersionView:
    """The flow version whose evidence the page reads (`?version=`): the current one unless another is asked for."""
    return version_view(policy, request.GET.get("version"), versions_left(policy) if left is None else left)


def _wants_fragment(request: HtmxHttpRequest, target: str) -> bool:
    # A history restore after a cache miss needs the whole page, not a fragment.
    return bool(request.htmx) and not request.htmx.history_restore_request and request.htmx.target == target


def _svg(markup: str) -> SafeString:
    # Safe to mark: charts.py escapes every piece of text it puts in the SVG (type names included)
    # and writes only numbers and fixed class names otherwise.
    return mark_safe(markup)  # noqa: S308


# ---------------------------------------------------------------- overview


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """Every type the user may see: autonomy rate and accuracy with intervals, queue, threshold, trend."""
    if not may_see_dashboards(request.user):
        raise PermissionDenied
    manager = is_manager(request.user)
    rows = selectors.overview()
    allowed = scoped_output_types(request.user)
    if allowed is not None:
        rows = [row for row in rows if row["output_type"] in allowed]
    trends = selectors.trends_by_type([row["output_type"] for row in rows], SPARK_DAYS)
    for index, row in enumerate(rows):
        row["spark"] = _svg(
            charts.sparkline(trends[row["output_type"]], output_type=row["output_type"], chart_id=f"spark-{index}")
        )
        # What must meet the target is what nobody reviews: the audited estimate of auto-processed outputs.
        high = row["auto_accuracy_ci_high"]
        row["below_target"] = high is not None and high < row["target_accuracy"]
    context = {
        "rows": rows,
        "manager": manager,
        "types_chart": _svg(charts.types_chart(rows)),
        "totals": {
            "types": len(rows),
            "total": sum(row["total"] for row in rows),
            "auto": sum(row["auto"] for row in rows),
            "pending": sum(row["pending"] for row in rows),
            "autonomous": sum(1 for row in rows if row["threshold"] is not None and not row["always_review"]),
        },
        "spark_days": SPARK_DAYS,
    }
    return render(request, "autonomy/overview.html", context)


# ---------------------------------------------------------------- one type


def _what_if_context(
    policy: AutonomyPolicy,
    threshold: float | None,
    window: Window,
    version: VersionView,
    strata: dict[int, Stratum] | None = None,
) -> dict[str, Any]:
    """The preview at `threshold`, beside what the current threshold did, for the #what-if partial."""
    context = {"preview": None, "current": None, "policy": policy, "window": window, "version": version}
    if threshold is None:
        return context
    where = version.where()
    if strata is None:
        strata = type_strata(policy.output_type, window.since, where)
    preview = what_if(policy.output_type, threshold, since=window.since, strata=strata, where=where)
    current = None
    if policy.threshold is not None and abs(policy.threshold - threshold) > 1e-9:
        current = what_if(policy.output_type, policy.threshold, since=window.since, strata=strata, where=where)
    below = preview["ci_low"] is not None and preview["ci_low"] < policy.target_accuracy
    return {**context, "preview": preview, "current": current, "below_target": below}


def _trend_context(policy: AutonomyPolicy, period: str, version: VersionView) -> dict[str, Any]:
    rows = selectors.trend(policy.output_type, period, where=version.where())
    chart = charts.trend_chart(rows, period=period, target=policy.target_accuracy, output_type=policy.output_type)
    return {"policy": policy, "period": period, "trend_rows": rows, "trend_chart": _svg(chart), "version": version}


def _versions_context(policy: AutonomyPolicy, version: VersionView, left: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The versions the page can show, and the earlier ones whose evidence a manager may carry over."""
    links = [("", version_label(policy.flow_version) + " (current)", version.version is None)]
    links += [(version_param(v), version_label(v), version.version == v) for v in left]
    return {
        "version": version,
        "version_links": links if left else [],
        "carry_over_choices": _carry_over_choices(policy, left),
    }


def _carry_over_choices(policy: AutonomyPolicy, left: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """The earlier versions whose evidence does not count yet: those a manager may carry over."""
    return [(v, version_label(v)) for v in left if v not in policy.evidence_versions]


def _history(policy: AutonomyPolicy) -> list[PolicyChange]:
    return list(PolicyChange.objects.filter(policy=policy).select_related("by")[:HISTORY_ROWS])


def _period(request: HttpRequest) -> str:
    period = request.GET.get("period", "day")
    return period if period in PERIODS else "day"


def _window(request: HttpRequest, policy: AutonomyPolicy) -> Window:
    """The evidence window asked for in the URL (`?window=`); anything unknown reads the default."""
    key = request.GET.get("window", DEFAULT_WINDOW)
    return window_for(policy, key if key in WINDOW_KEYS else DEFAULT_WINDOW)


def _preview_threshold(request: HttpRequest, policy: AutonomyPolicy, recommended: float | None) -> float | None:
    """The threshold the page previews: one asked for in the URL, else the current, else the recommended."""
    form = WhatIfForm(request.GET)
    if "threshold" in request.GET and form.is_valid():
        return form.cleaned_data["threshold"]
    return policy.threshold if policy.threshold is not None else recommended


def _type_context(
    request: HtmxHttpRequest,
    policy: AutonomyPolicy,
    *,
    form: PolicyForm | None = None,
    carry_over_form: CarryOverForm | None = None,
    alert: str = "",
    alert_level: str = "success",
) -> dict[str, Any]:
    output_type = policy.output_type
    manager = is_manager(request.user)
    window = _window(request, policy)
    left = versions_left(policy)
    version = _version(request, policy, left)
    where = version.where()
    # Calibration, recommendation, summary and what-if read the same per-percent strata: aggregate them once.
    strata = type_strata(output_type, window.since, where)
    estimate_window = window_for(policy, ESTIMATE_WINDOW) if window.key == DEFAULT_WINDOW else window
    summary = selectors.type_summary(
        output_type, window.since, strata=strata, audits_since=estimate_window.since, where=where
    )
    bands = selectors.calibration_bands(strata)
    rec = recommend(output_type, policy=policy, strata=strata)
    evidence = rec["evidence"]
    context: dict[str, Any] = {
        "policy": policy,
        "manager": manager,
        "window": window,
        "estimate_window": estimate_window,
        "window_choices": WINDOW_CHOICES,
        "guard": guard_state(policy),
        "summary": summary,
        "bands": bands,
        "calibration_chart": _svg(
            charts.calibration_chart(
                bands, target=policy.target_accuracy, threshold=policy.threshold, output_type=output_type
            )
        ),
        "rec": rec,
        "evidence": evidence,
        "recommendation_chart": _svg(
            charts.recommendation_chart(
                evidence,
                target=policy.target_accuracy,
                chosen=rec["threshold"],
                current=policy.threshold,
                output_type=output_type,
            )
        ),
        # What each rule left out of the figures above, and how far reviewers agree (`reliability_selectors`).
        "adjudication": reliability_selectors.adjudication_counts(output_type=output_type, since=window.since),
        "agreement": reliability_selectors.agreement_by_type(output_types=[output_type], since=window.since).get(
            output_type
        ),
        "field_errors": selectors.field_error_rates(output_type, window.since, where),
        "reject_rates": selectors.reject_reason_rates(output_type, window.since, where),
        "queue": selectors.queue_depth(output_type),
        "history": _history(policy),
        "alert": alert,
        "alert_level": alert_level,
        **_trend_context(policy, _period(request), version),
        **_versions_context(policy, version, left),
    }
    if manager:
        preview = _preview_threshold(request, policy, rec["threshold"])
        if form is None:
            form = PolicyForm(policy=policy)
            if "threshold" in request.GET and preview is not None:
                form.initial.update(threshold=preview, review_all=False)
        context["form"] = form
        context["carry_over_form"] = carry_over_form or CarryOverForm(versions=context["carry_over_choices"])
        today = timezone.localdate(timezone=local_zone())
        context["export_form"] = ExportForm(
            initial={"date_from": today - timedelta(days=EXPORT_DEFAULT_DAYS - 1), "date_to": today}
        )
        context["time_zone"] = str(local_zone())
        context["slider_value"] = preview if preview is not None else 1.0
        context.update(_what_if_context(policy, preview, window, version, strata))
    return context


def _reviewing_context(policy: AutonomyPolicy) -> dict[str, Any]:
    """Time to decision and reviewer throughput: the page's slowest reads over the reviews tables,
    loaded after the page (by htmx) so the accuracy figures a manager came for do not wait for them."""
    since = timezone.now() - timedelta(days=THROUGHPUT_DAYS)
    return {
        "policy": policy,
        "queue": selectors.queue_health(policy.output_type, since=since),
        "throughput": selectors.reviewer_throughput(policy.output_type, since=since),
        "handling": reliability_selectors.handling_time(output_type=policy.output_type, since=since),
        "throughput_days": THROUGHPUT_DAYS,
    }


def _slider_value(form: PolicyForm, policy: AutonomyPolicy) -> float:
    """Where the threshold slider sits after a refused change: at the value tried, else the current one."""
    tried = form.cleaned_data.get("threshold") if hasattr(form, "cleaned_data") else None
    value = tried if tried is not None else policy.threshold
    return 1.0 if value is None else value


def _render(request: HtmxHttpRequest, name: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    response = render(request, name, context, status=status)
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def _describe(changes: dict[str, list[Any]]) -> str:
    def shown(value: Any) -> str:
        return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    return "; ".join(f"{field} {shown(old)} → {shown(new)}" for field, (old, new) in changes.items())


@login_required
@require_http_methods(["GET", "POST"])
def type_detail(request: HtmxHttpRequest, output_type: str) -> HttpResponse:
    """One type's dashboard; for managers also the policy controls. POST applies a policy change, or carries the
    evidence of an earlier flow version over (a form with `carry_over_from`)."""
    policy = policy_observed(policy_get_for_user(request.user, output_type))
    if request.method == "POST" and "carry_over_from" in request.POST:
        return _carry_over(request, policy)
    if request.method == "POST":
        return _apply(request, policy)
    if _wants_fragment(request, "what-if"):
        if not is_manager(request.user):
            raise PermissionDenied
        form = WhatIfForm(request.GET)
        if not form.is_valid():
            context = {"policy": policy, "preview": None, "what_if_error": "Enter a threshold between 0 and 1."}
            return _render(request, "autonomy/type.html#what-if", context, status=422)
        context = _what_if_context(
            policy, form.cleaned_data["threshold"], _window(request, policy), _version(request, policy)
        )
        return _render(request, "autonomy/type.html#what-if", context)
    if _wants_fragment(request, "reviewing-panel"):
        return _render(request, "autonomy/type.html#reviewing-panel", _reviewing_context(policy))
    if _wants_fragment(request, "trend-panel"):
        context = _trend_context(policy, _period(request), _version(request, policy))
        return _render(request, "autonomy/type.html#trend-panel", context)
    return _render(request, "autonomy/type.html", _type_context(request, policy))


def _apply(request: HtmxHttpRequest, policy: AutonomyPolicy) -> HttpResponse:
    """A manager's policy change, with its required reason; refused changes come back with errors by field (422)."""
    if not is_manager(request.user):
        raise PermissionDenied("Only managers may change autonomy policies.")
    form = PolicyForm(request.POST, policy=policy)
    change = None
    if form.is_valid():
        try:
            change = policy_update(
                output_type=policy.output_type,
                changes=form.changes(),
                by=request.user,
                reason=form.cleaned_data["reason"],
            )
        except PolicyError as error:
            field = error.field
            form.add_error(field if field in form.fields else None, str(error))
    if form.errors:
        if request.htmx:
            context = {"policy": policy, "form": form, "manager": True, "slider_value": _slider_value(form, policy)}
            response = _render(request, "autonomy/type.html#policy-form", context, status=422)
            return reswap(retarget(response, "#policy-form"), "outerHTML")
        return _render(request, "autonomy/type.html", _type_context(request, policy, form=form), status=422)
    message = (
        f"Policy of {policy.output_type} changed: {_describe(change.changes)}."
        if change is not None
        else "Nothing changed: the policy already had these values."
    )
    if request.htmx:
        policy.refresh_from_db()
        context = _type_context(request, policy, alert=message, alert_level="success" if change else "info")
        response = _render(request, "autonomy/type.html#type-body", context)
        return reswap(retarget(response, "#type-body"), "outerHTML")
    (messages.success if change else messages.info)(request, message)
    return redirect("autonomy:type", output_type=policy.output_type)


def _carry_over(request: HtmxHttpRequest, policy: AutonomyPolicy) -> HttpResponse:
    """A manager carrying an earlier version's evidence over, with its required reason; refused: the page with
    the form's errors by field (422)."""
    if not is_manager(request.user):
        raise PermissionDenied("Only managers may carry evidence over.")
    form = CarryOverForm(request.POST, versions=_carry_over_choices(policy, versions_left(policy)))
    change = None
    if form.is_valid():
        try:
            change = policy_evidence_carry_over(
                output_type=policy.output_type,
                from_version=form.cleaned_data["carry_over_from"],
                by=request.user,
                reason=form.cleaned_data["carry_over_reason"],
            )
        except PolicyError as error:
            field = {"from_version": "carry_over_from", "reason": "carry_over_reason"}.get(error.field or "")
            form.add_error(field, str(error))
    if change is None:
        return _render(request, "autonomy/type.html", _type_context(request, policy, carry_over_form=form), status=422)
    message = f"Evidence of {version_label(change.evidence['from_version'])} now counts for the current version."
    messages.success(request, message)
    return redirect("autonomy:type", output_type=policy.output_type)
