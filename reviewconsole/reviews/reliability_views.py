"""Pages of reviewer reliability: the blind second review, the managers' disagreements to adjudicate, and the
reviewers' figures.

Second reviews are for reviewers of the item's type other than the first reviewer (anyone else gets 404, as for
an item they may not see). Adjudication and the reviewers page are for managers (`autonomy.manage_autonomy`),
within their output-type limit: a disagreement of another type is a 404, another type's reviewers are not shown.
Reads go through `reliability_selectors`, writes through `reliability`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewconsole.reviews import reliability_selectors, schema_form
from reviewconsole.reviews.diff import field_diff
from reviewconsole.reviews.forms import AdjudicationForm, SecondReviewForm
from reviewconsole.reviews.models import SecondReview, SecondReviewStatus
from reviewconsole.reviews.selectors import scoped_output_types
from reviewconsole.reviews.views import REJECT_OUTCOME, _approve_outcome, _require_perm, _run_inputs

MANAGE_PERM = "autonomy.manage_autonomy"
# The reviewers page covers the decisions of this many days.
RELIABILITY_DAYS = 90


def _second_review_for_user(request: HttpRequest, item_id: UUID) -> SecondReview:
    _require_perm(request)
    second = reliability_selectors.second_review_for(user=request.user, item_id=item_id)
    if second is None:
        raise Http404("No second review of this item for you")
    return second


def _second_review_page(
    request: HttpRequest,
    second: SecondReview,
    *,
    form: SecondReviewForm | None = None,
    parsed: schema_form.ParseResult | None = None,
    edit_errors: list[dict[str, Any]] | None = None,
    alert: str = "",
    status: int = 200,
) -> HttpResponse:
    """The item as the AI produced it, with nothing of the first decision: the review is blind."""
    item = second.item
    editing = second.status == SecondReviewStatus.PENDING and isinstance(item.output, dict)
    editing = editing and (parsed is not None or bool(request.GET.get("edit")))
    context = {
        "second": second,
        "item": item,
        "pending": second.status == SecondReviewStatus.PENDING,
        "form": form or SecondReviewForm(outcomes=item.outcomes),
        "reading": schema_form.build_form(item.schema, item.output, original=item.output, extra_rows=0),
        "editing": schema_form.build_form(
            item.schema,
            parsed.raw if parsed is not None else item.output,
            errors=[*(parsed.errors if parsed else []), *(edit_errors or [])],
            original=item.output,
        )
        if editing
        else None,
        "run_inputs": _run_inputs(item.run.inputs),
        "approve_outcome": _approve_outcome(item.outcomes),
        "can_reject": REJECT_OUTCOME in item.outcomes,
        "further_outcomes": [o for o in item.outcomes if o not in (_approve_outcome(item.outcomes), REJECT_OUTCOME)],
        "alert": alert,
    }
    return render(request, "reviews/second_review.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def second_review(request: HttpRequest, item_id: UUID) -> HttpResponse:
    """A decided item reviewed again, blind; POST records the second review (409 once given, 422 if invalid)."""
    from reviewconsole.reviews.reliability import SecondReviewError, second_review_give
    from reviewconsole.reviews.services import EditValidationError

    second = _second_review_for_user(request, item_id)
    if request.method == "GET":
        return _second_review_page(request, second)
    if second.status != SecondReviewStatus.PENDING:
        return _second_review_page(
            request, second, alert="The second review of this item was given already.", status=409
        )
    item = second.item
    form = SecondReviewForm(request.POST, outcomes=item.outcomes)
    parsed = None
    if request.POST.get("edit"):
        parsed = schema_form.parse_form(item.schema, request.POST, original=item.output)
        if parsed.errors:
            return _second_review_page(request, second, form=form, parsed=parsed, status=422)
    if not form.is_valid():
        return _second_review_page(request, second, form=form, parsed=parsed, status=422)
    try:
        second_review_give(
            item_id=item.id,
            user=request.user,
            outcome=form.cleaned_data["outcome"],
            edited_output=parsed.value if parsed is not None else None,
            comment=form.cleaned_data["comment"],
        )
    except EditValidationError as error:
        return _second_review_page(request, second, form=form, parsed=parsed, edit_errors=error.errors, status=422)
    except SecondReviewError as error:
        second.refresh_from_db()
        return _second_review_page(request, second, form=form, alert=str(error), status=409 if error.conflict else 422)
    messages.success(request, f"Second review of {item.output_type} {str(item.id)[:8]} recorded.")
    return redirect("reviews:queue")


def _require_manager(request: HttpRequest) -> None:
    if not request.user.has_perm(MANAGE_PERM):
        raise PermissionDenied("Only managers may see this page.")


def _disagreement_rows(request: HttpRequest) -> list[dict[str, Any]]:
    rows = []
    for second in reliability_selectors.disagreements_for(user=request.user):
        item = second.item
        rows.append(
            {
                "second": second,
                "item": item,
                "first": item.decision,
                "second_diff": field_diff(item.output, second.edited_output)
                if second.edited_output is not None
                else [],
                "form": AdjudicationForm(prefix=str(item.id)),
            }
        )
    return rows


def _adjudications_page(request: HttpRequest, *, alert: str = "", status: int = 200) -> HttpResponse:
    context = {
        "rows": _disagreement_rows(request),
        "settled": list(reliability_selectors.disagreements_for(user=request.user, adjudicated=True)[:20]),
        "alert": alert,
    }
    return render(request, "reviews/adjudications.html", context, status=status)


@login_required
@require_GET
def adjudications(request: HttpRequest) -> HttpResponse:
    """Disagreements between first and second reviews of the manager's types, waiting for a ruling."""
    _require_manager(request)
    return _adjudications_page(request)


@login_required
@require_POST
def adjudicate(request: HttpRequest, item_id: UUID) -> HttpResponse:
    """A manager upholds one of the two decisions; the verdict replaces the first in every accuracy figure."""
    from reviewconsole.reviews.reliability import SecondReviewError, second_review_adjudicate

    _require_manager(request)
    allowed = scoped_output_types(request.user)
    second = SecondReview.objects.filter(item_id=item_id).only("output_type", "status").first()
    if second is None or (allowed is not None and second.output_type not in allowed):
        raise Http404("No disagreement on this item")
    form = AdjudicationForm(request.POST, prefix=str(item_id))
    if not form.is_valid():
        return _adjudications_page(request, alert="Choose which decision was right.", status=422)
    try:
        second_review_adjudicate(
            item_id=item_id, user=request.user, upheld=form.cleaned_data["upheld"], note=form.cleaned_data["note"]
        )
    except SecondReviewError as error:
        return _adjudications_page(request, alert=str(error), status=409 if error.conflict else 404)
    messages.success(request, "Adjudicated: the upheld verdict now counts in the accuracy figures.")
    return redirect(reverse("reviews:adjudications"))


@login_required
@require_GET
def reviewers(request: HttpRequest) -> HttpResponse:
    """Per reviewer of the manager's types: decisions, handling time, agreement, edit, reject and marked rates."""
    _require_manager(request)
    since = timezone.now() - timedelta(days=RELIABILITY_DAYS)
    allowed = scoped_output_types(request.user)
    context = {
        "rows": reliability_selectors.reviewer_reliability(user=request.user, since=since),
        "agreement": sorted(reliability_selectors.agreement_by_type(output_types=allowed, since=since).items()),
        "days": RELIABILITY_DAYS,
        "waiting": reliability_selectors.disagreements_for(user=request.user).count(),
    }
    return render(request, "reviews/reviewers.html", context)
