"""JSON endpoints for autonomy: read a type's policy with its statistics, and change it.

GET is for managers and for reviewers of that type; PATCH and POST …/carry-over for managers only (403 for
anyone else). Figures are over the evidence of the current version of the type's flow.
A PATCH changes any editable policy field and needs a `reason`, which the change history keeps with
who and when. A refused change is a 422 whose `loc` names the field: a missing reason, a value out of
range (a threshold outside [0, 1]) or a field that is not a policy field.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal

import pydantic
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Body, Router, Schema
from ninja.errors import ValidationError as NinjaValidationError

from reviewconsole.autonomy import selectors
from reviewconsole.autonomy.export_views import export_policy_for_user, export_response
from reviewconsole.autonomy.models import POLICY_INT_MAX, AutonomyPolicy, PolicyChange, PolicyMode
from reviewconsole.autonomy.recommendation import recommend, type_strata
from reviewconsole.autonomy.services import (
    EDITABLE_POLICY_FIELDS,
    PolicyError,
    policy_evidence_carry_over,
    policy_update,
)
from reviewconsole.autonomy.versions import evidence_filter
from reviewconsole.autonomy.views import (
    DEFAULT_WINDOW,
    ESTIMATE_WINDOW,
    is_manager,
    policy_get_for_user,
    policy_observed,
)
from reviewconsole.autonomy.windows import window_for
from reviewconsole.openapi import error_responses, inline_refs

router = Router(tags=["autonomy"])

HISTORY_LIMIT = 100

Fraction = Annotated[float, pydantic.Field(ge=0, le=1)]
Count = Annotated[int, pydantic.Field(ge=1, le=POLICY_INT_MAX)]
Code = Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
WindowKey = Literal["all", "since_change", "recent"]


class StatsOut(Schema):
    """Headline figures over the type's gate decisions in the window; rates with their exact 95% interval.

    Accuracy figures leave out the reviews a rule forced; those have their own (`forced_*`)."""

    total: int = pydantic.Field(description="Outputs that passed the gate.")
    auto: int = pydantic.Field(description="Outputs auto-processed (not reviewed).")
    routed: int = pydantic.Field(description="Outputs sent to review.")
    reviewed: int = pydantic.Field(description="Outputs no rule forced to review with a reviewer's verdict.")
    pending_verdict: int
    correct: int = pydantic.Field(description="Reviewed outputs approved unchanged.")
    accuracy: float | None = pydantic.Field(description="correct / reviewed.")
    ci_low: float | None
    ci_high: float | None
    audited: int = pydantic.Field(description="Audit samples (above-threshold outputs reviewed at random).")
    audited_correct: int
    auto_accuracy_estimate: float | None = pydantic.Field(
        description="Weighted accuracy of audit samples: the estimate for auto-processed outputs."
    )
    auto_accuracy_ci_low: float | None
    auto_accuracy_ci_high: float | None
    auto_accuracy_n_eff: float
    audits_since: datetime | None = pydantic.Field(
        description="The audit samples behind auto_accuracy_estimate are of outputs created since then (null: all)."
    )
    estimated_accuracy: float | None = pydantic.Field(
        description="Accuracy over all outputs, each verdict weighted by the inverse of its chance of review."
    )
    estimated_accuracy_ci_low: float | None
    estimated_accuracy_ci_high: float | None
    estimated_accuracy_n_eff: float
    autonomy_rate: float | None = pydantic.Field(description="auto / total.")
    autonomy_ci_low: float | None
    autonomy_ci_high: float | None
    autonomy_n: int
    forced: int = pydantic.Field(description="Outputs a rule forced to review (high value and the like).")
    forced_reviewed: int
    forced_correct: int
    forced_accuracy: float | None = pydantic.Field(description="forced_correct / forced_reviewed.")
    forced_ci_low: float | None
    forced_ci_high: float | None


class CandidateOut(Schema):
    threshold: float
    n: int = pydantic.Field(description="Verdicts at or above, on outputs no rule forced.")
    correct: int
    outputs: float = pydantic.Field(description="The outputs those verdicts stand for.")
    n_eff: float
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    lower_bound: float = pydantic.Field(description="One-sided exact 95% lower bound.")
    p_value: float = pydantic.Field(description="Exact test of 'less accurate than the target'.")
    eligible: bool = pydantic.Field(description="At least min_samples reviewed outputs at or above.")
    tested: bool = pydantic.Field(description="Reached by the fixed-sequence test, from the strictest down.")
    passes: bool = pydantic.Field(description="Tested, and 'less accurate than the target' rejected at 5%.")


class NeededOut(Schema):
    correct: int = pydantic.Field(description="More correct verdicts needed …")
    threshold: float = pydantic.Field(description="… on outputs with confidence at or above this.")


class RecommendationOut(Schema):
    threshold: float | None = pydantic.Field(description="The recommended threshold; null: keep reviewing all.")
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    lower_bound: float | None
    n_eff: float
    target_accuracy: float
    min_samples: int
    reviewed: int
    current_threshold: float | None
    start: float | None = pydantic.Field(description="The first threshold the test sequence tried.")
    reason: str
    guarantee: str = pydantic.Field(description="What a recommended threshold promises, and its assumptions.")
    needed: NeededOut | None = pydantic.Field(
        description="When nothing passes: the fewest more correct verdicts that would let a threshold pass."
    )
    evidence: list[CandidateOut] = pydantic.Field(description="Every candidate threshold, from 1.00 down.")


class WindowOut(Schema):
    key: WindowKey
    since: datetime | None = pydantic.Field(description="Figures cover gate decisions created since then.")
    label: str


class ChangeOut(Schema):
    at: datetime
    by: str | None = pydantic.Field(description="Who made the change; null for an automatic one.")
    changes: dict[str, list[Any]] = pydantic.Field(description='{"field": [from, to], …}')
    reason: str
    automatic: bool

    @staticmethod
    def resolve_by(change: PolicyChange) -> str | None:
        return change.by.get_username() if change.by else None


FOUR_EYES_DESCRIPTION = (
    "Review reasons whose items need two different approvers (maker-checker); known codes only "
    "(`GET /api/v1/reviews/reasons`), empty for none."
)


class PolicyOut(Schema):
    output_type: str
    threshold: float | None = pydantic.Field(description="Confidence at or above which outputs skip review.")
    always_review: bool
    review_failed_checks: bool = pydantic.Field(
        description="An output failing an error-level check is reviewed (reason `check_failed`)."
    )
    audit_rate: float
    target_accuracy: float
    min_samples: int
    mode: PolicyMode
    auto_min_threshold: float
    auto_max_threshold: float
    reject_reasons: list[str]
    four_eyes_reasons: list[str] = pydantic.Field(description=FOUR_EYES_DESCRIPTION)
    sla_minutes: int | None
    expiry_minutes: int | None
    expiry_outcome: str
    exclude_marked_approvals: bool = pydantic.Field(
        description="Bulk and fast approvals are left out of every accuracy figure."
    )
    second_review_rate: float = pydantic.Field(description="Share of decided items sent to a blind second review.")
    updated_at: datetime
    flow_version: str = pydantic.Field(
        description="The version of the type's flow the threshold and figures are about (declared, or a hash of its "
        "source); empty until a flow of the type is seen."
    )
    evidence_versions: list[str] = pydantic.Field(
        description="The flow versions whose verdicts count as its evidence: its own, those carried over to it, "
        'and "" (before versions were recorded) for the first version seen.'
    )
    window: WindowOut = pydantic.Field(description="The evidence window of `stats` and `recommendation`.")
    stats: StatsOut
    recommendation: RecommendationOut
    history: list[ChangeOut] = pydantic.Field(description=f"Newest first, at most {HISTORY_LIMIT}.")
    url: str = pydantic.Field(description="The type's page in the console.")


class PolicyPatch(pydantic.BaseModel):
    """Any editable policy field, and the reason for the change."""

    model_config = pydantic.ConfigDict(extra="forbid")

    reason: Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    threshold: Fraction | None = None
    always_review: pydantic.StrictBool = False
    review_failed_checks: pydantic.StrictBool = True
    audit_rate: Fraction = 0.0
    target_accuracy: Fraction = 0.0
    min_samples: Count = 1
    mode: PolicyMode = PolicyMode.MANUAL
    auto_min_threshold: Fraction = 0.0
    auto_max_threshold: Fraction = 1.0
    reject_reasons: Annotated[list[Code], pydantic.Field(min_length=1)] = pydantic.Field(default_factory=list)
    four_eyes_reasons: list[Code] = pydantic.Field(default_factory=list, description=FOUR_EYES_DESCRIPTION)
    sla_minutes: Count | None = None
    expiry_minutes: Count | None = None
    expiry_outcome: Annotated[str, pydantic.Field(max_length=100)] = ""
    exclude_marked_approvals: pydantic.StrictBool = False
    second_review_rate: Fraction = 0.0

    def changes(self) -> dict[str, Any]:
        """Only the fields the body sent; `mode` as its plain value."""
        values = {field: getattr(self, field) for field in EDITABLE_POLICY_FIELDS if field in self.model_fields_set}
        if "mode" in values:
            values["mode"] = PolicyMode(values["mode"]).value
        return values


def _validation_error(error: pydantic.ValidationError) -> NinjaValidationError:
    details = []
    for detail in error.errors(include_url=False):
        message = detail["msg"]
        if detail["type"] == "extra_forbidden":
            message = f"Unknown field; the policy fields are: {', '.join(EDITABLE_POLICY_FIELDS)}"
        details.append({"loc": ["body", *detail["loc"]], "msg": message, "type": detail["type"]})
    return NinjaValidationError(details)


def _policy_out(request: HttpRequest, policy: AutonomyPolicy, window_key: str = DEFAULT_WINDOW) -> dict[str, Any]:
    """The policy with its statistics and recommendation over the window, and its history."""
    window = window_for(policy, window_key)
    where = evidence_filter(policy.evidence_versions)
    strata = type_strata(policy.output_type, window.since, where)
    audits_since = window_for(policy, ESTIMATE_WINDOW).since if window.key == DEFAULT_WINDOW else window.since
    stats = selectors.type_summary(
        policy.output_type, window.since, strata=strata, audits_since=audits_since, where=where
    )
    history = PolicyChange.objects.filter(policy=policy).select_related("by")[:HISTORY_LIMIT]
    url = request.build_absolute_uri(reverse("autonomy:type", args=[policy.output_type]))
    return {
        **{
            field: getattr(policy, field)
            for field in ("output_type", *EDITABLE_POLICY_FIELDS, "updated_at", "flow_version", "evidence_versions")
        },
        "window": {"key": window.key, "since": window.since, "label": window.label},
        "stats": stats,
        "recommendation": recommend(policy.output_type, policy=policy, strata=strata),
        "history": list(history),
        "url": url,
    }


class CarryOverIn(Schema):
    """The earlier flow version whose evidence now counts for the current one, and why."""

    model_config = pydantic.ConfigDict(extra="forbid")

    from_version: Annotated[str, pydantic.StringConstraints(max_length=40)] = pydantic.Field(
        description='An earlier version of the type\'s flow; "" for the decisions made before versions were recorded.'
    )
    reason: Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


def _refused(error: PolicyError) -> NinjaValidationError:
    field = error.field
    return NinjaValidationError(
        [{"loc": ["body", field] if field else ["body"], "msg": str(error), "type": "value_error"}]
    )


EXPORT_DAYS_HELP = (
    "Decisions made from the start of `date_from` to the end of `date_to` (days in the console's time zone, "
    "both included; either may be left out for no limit)."
)


def _export_days(date_from: date | None, date_to: date | None) -> None:
    if date_from is not None and date_to is not None and date_from > date_to:
        message = f"The start date {date_from.isoformat()} is after the end date {date_to.isoformat()}"
        raise NinjaValidationError([{"loc": ["query", "date_from"], "msg": message, "type": "value_error"}])


def _export_operation(kind: str, media_type: str, description: str, summary: str) -> dict[str, Any]:
    """The route options of an export: what it does, what its 200 streams (not JSON), and its errors."""
    return {
        "description": f"{summary} {EXPORT_DAYS_HELP}",
        "response": {**error_responses(403, 404, 422)},
        "openapi_extra": {
            "responses": {
                200: {
                    "description": description,
                    "headers": {
                        "Content-Disposition": {
                            "description": f"attachment, with a file name naming the type, {kind} and the days.",
                            "schema": {"type": "string"},
                        }
                    },
                    "content": {media_type: {"schema": {"type": "string"}}},
                },
                403: {"description": "Not a manager, or a type outside the caller's output-type limit."},
                404: {"description": "No such output type."},
                422: {"description": "A date that does not parse, or a start after the end; `loc` names it."},
            }
        },
    }


@router.get(
    "/{path:output_type}/export/audit",
    **_export_operation(
        "audit",
        "text/csv",
        "The audit trail as CSV, a row per decision, streamed.",
        "The type's audit trail (managers): a CSV row per decision with who, when (UTC), the outcome, the reasons, "
        "the changes (compact JSON), the handling time, the four-eyes first approver and any adjudication. Cells "
        "that a spreadsheet would run as a formula start with `'`.",
    ),
)
def autonomy_export_audit(
    request: HttpRequest, output_type: str, date_from: date | None = None, date_to: date | None = None
) -> HttpResponse:
    _export_days(date_from, date_to)
    policy = export_policy_for_user(request.auth, output_type)
    return export_response(output_type=policy.output_type, kind="audit", date_from=date_from, date_to=date_to)


@router.get(
    "/{path:output_type}/export/dataset",
    **_export_operation(
        "dataset",
        "application/jsonl",
        "The dataset as JSON Lines, one object per decided item, streamed.",
        "The type's decided items as a dataset (managers): a JSON line per item with the run's input, the AI's "
        "output, the corrected output and the verdict as the autonomy evidence counts it (the line's schema is "
        "`DatasetLine`, in the README).",
    ),
)
def autonomy_export_dataset(
    request: HttpRequest, output_type: str, date_from: date | None = None, date_to: date | None = None
) -> HttpResponse:
    _export_days(date_from, date_to)
    policy = export_policy_for_user(request.auth, output_type)
    return export_response(output_type=policy.output_type, kind="dataset", date_from=date_from, date_to=date_to)


# Declared before the type's own routes: `{path:output_type}` would also match ".../carry-over".
@router.post(
    "/{path:output_type}/carry-over",
    response={200: PolicyOut, **error_responses(403, 404, 422)},
    openapi_extra={
        "responses": {
            403: {"description": "Only managers may carry evidence over."},
            404: {"description": "No such output type."},
            422: {"description": "A missing reason, or a version the type's flow has not left; `loc` names it."},
        }
    },
)
def autonomy_carry_over(request: HttpRequest, output_type: str, payload: CarryOverIn) -> dict[str, Any]:
    """Count the evidence of an earlier version of the type's flow for the current version, with a required
    `reason`. A new flow version starts at full review; this is the manager's word that the earlier verdicts
    hold for it. Logged in the history with both versions and the reason."""
    if not is_manager(request.auth):
        raise PermissionDenied("Only managers may carry evidence over.")
    policy = policy_observed(policy_get_for_user(request.auth, output_type))
    try:
        policy_evidence_carry_over(
            output_type=policy.output_type, from_version=payload.from_version, by=request.auth, reason=payload.reason
        )
    except PolicyError as error:
        raise _refused(error) from None
    policy.refresh_from_db()
    return _policy_out(request, policy)


@router.get(
    "/{path:output_type}",
    response={200: PolicyOut, **error_responses(403, 404, 422)},
    openapi_extra={
        "responses": {
            403: {"description": "Neither a manager nor a reviewer of this type."},
            404: {"description": "No such output type."},
            422: {"description": "An unknown `window`; `loc` names it."},
        }
    },
)
def autonomy_detail(request: HttpRequest, output_type: str, window: WindowKey = DEFAULT_WINDOW) -> dict[str, Any]:
    """A type's autonomy policy, its statistics, the recommended threshold with its evidence, and its history.

    `window`: the evidence the figures cover: `all` time, `since_change` (the last change to routing), or
    `recent` (a rolling window). Under `all`, the estimate for auto-processed outputs reads the recent window.
    """
    policy = policy_observed(policy_get_for_user(request.auth, output_type))
    return _policy_out(request, policy, window)


@router.patch(
    "/{path:output_type}",
    response={200: PolicyOut, **error_responses(403, 404, 422)},
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": inline_refs(PolicyPatch.model_json_schema())}},
            "required": True,
        },
        "responses": {
            403: {"description": "Only managers may change policies."},
            404: {"description": "No such output type."},
            422: {"description": "A missing reason, a value out of range, or an unknown field; `loc` names it."},
        },
    },
)
def autonomy_update(request: HttpRequest, output_type: str, payload: Body[dict[str, Any]]) -> dict[str, Any]:
    """Change any policy fields, with a required `reason`. Only the fields sent change; the history keeps the rest."""
    if not is_manager(request.auth):
        raise PermissionDenied("Only managers may change autonomy policies.")
    policy = policy_get_for_user(request.auth, output_type)
    try:
        patch = PolicyPatch.model_validate(payload)
    except pydantic.ValidationError as error:
        raise _validation_error(error) from None
    try:
        policy_update(output_type=policy.output_type, changes=patch.changes(), by=request.auth, reason=patch.reason)
    except PolicyError as error:
        raise _refused(error) from None
    policy.refresh_from_db()
    return _policy_out(request, policy)
