"""JSON endpoints for review items: the queue, one item, and deciding it.

Who sees what: a user needs the `reviews.review_item` permission (403 without
it) and sees only items of the output types they may review; any other item is
answered with 404, exactly like one that does not exist.

No `from __future__ import annotations` here: ninja resolves a paginated view's
parameter annotations from its wrapper's module, where these names are unknown.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import pydantic
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.http import HttpRequest
from django.urls import reverse
from ninja import Body, P, Query, Router, Schema
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import CursorPagination, paginate

from reviewconsole.engine import selectors as engine_selectors
from reviewconsole.engine.api import RunWithStepsOut, require_perm, run_with_steps
from reviewconsole.engine.models import FlowRun
from reviewconsole.openapi import error_responses
from reviewconsole.reviews import four_eyes, selectors
from reviewconsole.reviews.models import Decision, FirstApproval, ReviewItem, ReviewStatus
from reviewconsole.reviews.reasons import Reason, reason_label, review_reasons
from reviewconsole.reviews.search import QUERY_MAX_CHARS

router = Router(tags=["reviews"])
# `GET /runs/{run_id}`: the engine's run with its steps, and the run's review items.
runs_router = Router(tags=["flows"])

REVIEW_PERM = "reviews.review_item"
REASON_DESCRIPTION = (
    "Why the output was sent to review: a built-in reason or one its flow declares; "
    "`GET /api/v1/reviews/reasons` lists every known code with its label."
)


class DecisionOut(Schema):
    outcome: str
    edited_output: Any
    comment: str
    reason_code: str
    user: str | None
    at: datetime

    @staticmethod
    def resolve_user(decision: Decision) -> str | None:
        return decision.user.get_username() if decision.user else None


class ReviewOut(Schema):
    id: UUID
    method: str
    output_type: str
    reason: str = pydantic.Field(description=REASON_DESCRIPTION)
    status: ReviewStatus
    created_at: datetime
    decision: DecisionOut | None

    @staticmethod
    def resolve_decision(item: ReviewItem) -> Decision | None:
        return getattr(item, "decision", None)


class RunOut(RunWithStepsOut):
    reviews: list[ReviewOut]

    @staticmethod
    def resolve_reviews(run: FlowRun) -> list[ReviewItem]:
        return list(run.review_items.all())


@runs_router.get(
    "/runs/{run_id}",
    response={200: RunOut, **error_responses(403, 404)},
    # The id it had when the engine served it: generated clients keep their method name.
    operation_id="reviewconsole_engine_api_run_detail",
)
def run_detail(request: HttpRequest, run_id: UUID) -> FlowRun:
    """A run with its steps (LLM calls included, with token counts) and its review items."""
    run = run_with_steps(request, run_id)
    prefetch_related_objects([run], Prefetch("review_items", queryset=selectors.review_items_of_run(run_id=run.id)))
    return run


class ReviewDecisionOut(Schema):
    """The decision on an item, as recorded; or, on an item needing four eyes, its first approval."""

    item_id: UUID
    outcome: str
    edited_output: Any = pydantic.Field(description="The reviewer's corrected output; null when approved as is.")
    diff: list[dict[str, Any]] = pydantic.Field(description='Changed leaves as {"path", "before", "after"}.')
    comment: str
    reason_code: str
    user: str | None = pydantic.Field(description="Who decided; null when the item expired.")
    at: datetime
    status: ReviewStatus = pydantic.Field(description="The item's status after the decision.")
    awaiting_second_approval: bool = pydantic.Field(
        description="True when this was the first of two approvals the item needs (four eyes): it stays "
        "pending, and another reviewer must approve it too."
    )
    handling_seconds: float | None = pydantic.Field(
        default=None,
        description="Seconds from the reviewer opening the item to deciding it; null when decided without opening "
        "it, and for the first of two approvals.",
    )
    mark: str = pydantic.Field(
        default="",
        description="'bulk' or 'fast' for an approval that may not have been a check (see the README), else empty.",
    )

    @staticmethod
    def resolve_user(decision: Decision | FirstApproval) -> str | None:
        return decision.user.get_username() if decision.user else None

    @staticmethod
    def resolve_reason_code(decision: Decision | FirstApproval) -> str:
        return getattr(decision, "reason_code", "")

    @staticmethod
    def resolve_status(decision: Decision | FirstApproval) -> str:
        return decision.item.status

    @staticmethod
    def resolve_awaiting_second_approval(decision: Decision | FirstApproval) -> bool:
        return isinstance(decision, FirstApproval)


class FirstApprovalOut(Schema):
    """The first of the two approvals an item needing four eyes gets."""

    user: str | None
    at: datetime
    outcome: str
    edited: bool = pydantic.Field(description="Whether the first approver corrected the output.")
    edited_output: Any = pydantic.Field(
        description="The first approver's corrected output, which a second approval as is confirms; null when "
        "approved as is."
    )
    diff: list[dict[str, Any]] = pydantic.Field(description='Changed leaves as {"path", "before", "after"}.')
    comment: str

    @staticmethod
    def resolve_user(first: FirstApproval) -> str | None:
        return first.user.get_username() if first.user else None

    @staticmethod
    def resolve_edited(first: FirstApproval) -> bool:
        return first.edited_output is not None


class FindingLinkOut(Schema):
    item: str | None = pydantic.Field(
        default=None,
        description="The other review item's id (a possible duplicate, say); null when the other output went "
        "through without review.",
    )
    run: str = pydantic.Field(description="The other output's run id.")


class FindingOut(Schema):
    check: str = pydantic.Field(description="The check that found it; `missing`: a required field without a value.")
    severity: Literal["error", "warning", "info"]
    field: str = pydantic.Field(description="The output field, as a path (`line_items.2.amount`); empty: the whole.")
    message: str
    link: FindingLinkOut | None = None


class SummaryFieldOut(Schema):
    label: str
    value: str = pydantic.Field(description="For display; `not found` when the output lacks it.")
    found: bool


class ReviewItemOut(Schema):
    id: UUID
    run_id: UUID
    method: str
    output_type: str
    reason: str = pydantic.Field(description=REASON_DESCRIPTION)
    reason_label: str = pydantic.Field(description="The reason as people read it.")
    confidence: float | None
    message: str
    status: ReviewStatus
    output: Any = pydantic.Field(description="What the flow produced, as it would continue with it.")
    # `schema` in JSON; a field of that name would shadow BaseModel.schema.
    item_schema: dict[str, Any] | None = pydantic.Field(
        alias="schema", description="JSON Schema an edited output must satisfy (null: any JSON object)."
    )
    outcomes: list[str]
    findings: list[FindingOut] = pydantic.Field(
        description="What the output type's checks found in the output when the item was created, errors first."
    )
    summary: list[SummaryFieldOut] = pydantic.Field(
        description="The few values that say what the output is, as its flow declares them for its type."
    )
    claimed_by: str | None
    created_at: datetime
    due_at: datetime | None
    expires_at: datetime | None
    decided_at: datetime | None
    awaiting_second_approval: bool = pydantic.Field(
        description="Approved once and waiting for a different reviewer's approval (four eyes)."
    )
    first_approval: FirstApprovalOut | None = pydantic.Field(
        description="The first approval of an item needing four eyes, kept once the item is decided."
    )
    decision: ReviewDecisionOut | None
    url: str = pydantic.Field(description="The item's page in the console.")

    @staticmethod
    def resolve_reason_label(item: ReviewItem) -> str:
        return reason_label(item.reason)

    @staticmethod
    def resolve_claimed_by(item: ReviewItem) -> str | None:
        return item.claimed_by.get_username() if item.claimed_by else None

    @staticmethod
    def resolve_decision(item: ReviewItem) -> Decision | None:
        return getattr(item, "decision", None)

    @staticmethod
    def resolve_awaiting_second_approval(item: ReviewItem) -> bool:
        return four_eyes.awaiting_second_approval(item)

    @staticmethod
    def resolve_first_approval(item: ReviewItem) -> FirstApproval | None:
        return getattr(item, "first_approval", None)

    @staticmethod
    def resolve_url(item: ReviewItem, context: dict[str, Any]) -> str:
        return context["request"].build_absolute_uri(reverse("reviews:item", args=[item.id]))


class ReasonOut(Schema):
    code: str
    label: str
    built_in: bool = pydantic.Field(description="False for a reason a flow declares.")
    flows: list[str] = pydantic.Field(description="The flows that declare it (none for a built-in reason).")

    @staticmethod
    def resolve_built_in(reason: Reason) -> bool:
        return not reason.flows


class ReviewFilters(Schema):
    # `?status=` (empty) means any status, like leaving it out.
    status: Annotated[ReviewStatus | None, pydantic.BeforeValidator(lambda value: value or None)] = None
    output_type: str = ""
    findings: Literal["", "errors", "any"] = pydantic.Field(
        default="",
        description="`errors`: only items with an error-level finding; `any`: only items with a finding.",
    )
    # A NUL is refused (400) before the query is read, as in every parameter (`inputs.UnsafeInputMiddleware`).
    q: str = pydantic.Field(
        default="",
        max_length=QUERY_MAX_CHARS,
        description="Words every item listed holds in its summary fields, its output or its run's input text.",
    )


def _items(request: HttpRequest) -> QuerySet[ReviewItem]:
    require_perm(request, REVIEW_PERM)
    return selectors.items_visible_to(request.auth).select_related(
        "claimed_by", "decision__user", "first_approval__user"
    )


def _field_error(field: str, message: str, error_type: str = "value_error") -> NinjaValidationError:
    return NinjaValidationError([{"loc": ["body", field], "msg": message, "type": error_type}])


@router.get("/reasons", response={200: list[ReasonOut], **error_responses(403)})
def reason_list(request: HttpRequest) -> list[Reason]:
    """Every review reason an item can have: the built-in ones, then those the flows you may see declare."""
    require_perm(request, REVIEW_PERM)
    return list(review_reasons(engine_selectors.flows_visible_to(request.auth)).values())


@router.get("", response={200: list[ReviewItemOut], **error_responses(403, 422)}, by_alias=True)
@paginate(CursorPagination, ordering=("created_at", "id"), page_size=50)
def review_list(request: HttpRequest, filters: Query[ReviewFilters]) -> QuerySet[ReviewItem]:
    """Review items of the types you may review, oldest first; follow `next` for newer ones.

    Without `status` (or with it empty) every status is listed; `status=pending` is the queue.
    """
    require_perm(request, REVIEW_PERM)
    items = selectors.queue_items(
        user=request.auth,
        status=filters.status or "",
        output_type=filters.output_type,
        findings=filters.findings,
        query=filters.q,
    )
    # The queue pages defer the heavy JSON; the API returns it, in the same query.
    return items.defer(None).select_related("decision__user", "first_approval__user")


@router.get(
    "/{item_id}",
    response={200: ReviewItemOut, **error_responses(403, 404)},
    by_alias=True,
    openapi_extra={"responses": {404: {"description": "No such item, or one of a type you may not review."}}},
)
def review_detail(request: HttpRequest, item_id: UUID) -> ReviewItem:
    """One review item with its output, the schema an edit must satisfy, and its decision once decided."""
    return _items(request).get(id=item_id)


@router.post(
    "/{item_id}/decision",
    response={200: ReviewDecisionOut, **error_responses(403, 404, 409, 422)},
    openapi_extra={
        "responses": {
            403: {"description": "You may not review items."},
            404: {"description": "No such item, or one of a type you may not review."},
            409: {
                "description": "The item was already decided, or expired, or its run was cancelled; or it needs "
                "four eyes and you gave its first approval (it needs a second approver)."
            },
            422: {"description": "An unknown outcome, a rejection without a reason, or an invalid edit."},
        }
    },
)
def review_decide(
    request: HttpRequest,
    item_id: UUID,
    # Separate body fields rather than one schema parameter, so every error's loc is ["body", <field>, ...].
    outcome: Body[str, P(description="One of the item's `outcomes`.")],
    edited_output: Body[
        Any,
        P(
            description="The whole corrected output, validated against the item's `schema`: every field the "
            "output has and no others, within the schema's bounds."
        ),
    ] = None,
    comment: Body[str, P(description="Shown with the decision.")] = "",
    reason_code: Body[str, P(description="Required to reject: one of the output type's reject reasons.")] = "",
) -> Decision | FirstApproval:
    """Decide a pending item: approve (optionally with an edited output) or reject (with a reason code).

    The run resumes with the decision in the background. An item whose review reason needs four eyes (see the
    policy's `four_eyes_reasons`) needs two approvers: the first approval answers with
    `awaiting_second_approval: true` and the item stays pending; the same user's second approval gets 409;
    another reviewer's approval decides it, confirming the first approver's edit unless they send their own.
    Either may reject.
    """
    # Deciding loads CrewAI (through the resume machinery); keep it out of URL loading.
    from reviewconsole.reviews import services

    item = _items(request).get(id=item_id)
    try:
        decision = services.decide(
            item_id=item.id,
            user=request.auth,
            outcome=outcome,
            edited_output=edited_output,
            comment=comment,
            reason_code=reason_code,
        )
    except services.EditValidationError as error:
        raise NinjaValidationError(
            [
                {
                    "loc": ["body", "edited_output", *e.get("loc", ())],
                    "msg": e["msg"],
                    "type": e.get("type", "value_error"),
                }
                for e in error.errors
            ]
        ) from None
    except (services.AlreadyDecidedError, services.NeedsSecondApproverError) as error:
        raise HttpError(409, str(error)) from None
    except services.DecisionError as error:
        raise _field_error(error.field or "outcome", str(error)) from None
    if isinstance(decision, Decision):
        # `decide` moved the item to decided; its in-memory copy predates that.
        decision.item.status = ReviewStatus.DECIDED
    return decision


@router.post(
    "/{item_id}/undo",
    response={200: ReviewItemOut, **error_responses(403, 404, 409)},
    by_alias=True,
    openapi_extra={
        "responses": {
            403: {"description": "You may not review items, or the decision is someone else's."},
            404: {"description": "No such item, or one of a type you may not review."},
            409: {
                "description": "Too late to undo: the undo window (`UNDO_SECONDS`) has ended or the flow has "
                "resumed; or the item has no decision to undo."
            },
        }
    },
)
def review_undo(request: HttpRequest, item_id: UUID) -> ReviewItem:
    """Undo your own decision (or your first approval of a four-eyes item) within the undo window.

    The flow's resume is held back for `UNDO_SECONDS` after a decision: until then, and while no worker has
    taken the resume, the decision can be undone. The item is pending again, with no decision and no verdict,
    and claimed by you; the answer is the item.
    """
    from reviewconsole.reviews import services

    item = _items(request).get(id=item_id)
    try:
        services.review_item_undo(item_id=item.id, user=request.auth)
    except services.UndoRefusedError as error:
        raise HttpError(error.status, str(error)) from None
    except services.DecisionError as error:
        raise HttpError(409, str(error)) from None
    return _items(request).get(id=item.id)
