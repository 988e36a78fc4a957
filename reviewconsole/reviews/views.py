"""Pages for reviewers: the queue, one item with its decision forms, and bulk approval.

Reads go through `selectors` and every write through `services`, whose conditional updates make each
decision happen exactly once. Every item is fetched by `_get_item_for_user`, so no view forgets the
per-output-type permission: an item of a type the user may not review is a 404, like a missing one.

A page and its fragments come from one view: an htmx request gets an inline partial of the same
template (`item.html#review-main` after a refused decision, `#claim-banner` for the claim heartbeat,
`#edit-form` when Edit is first pressed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseNotModified, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh, reswap, retarget
from django_htmx.middleware import HtmxDetails

from reviewconsole.autonomy import selectors as autonomy_selectors
from reviewconsole.autonomy.models import AutonomyPolicy, default_reject_reasons
from reviewconsole.engine import documents
from reviewconsole.engine import selectors as engine_selectors
from reviewconsole.engine.models import RunDocument
from reviewconsole.inputs import UnsafeInputError, json_loads
from reviewconsole.reviews import four_eyes, reliability_selectors, schema_form, selectors, undo_offers
from reviewconsole.reviews.confirmations import approval_confirmations
from reviewconsole.reviews.forms import BulkApproveForm, DecisionForm, QueueFilterForm
from reviewconsole.reviews.models import FirstApproval, ReviewItem, ReviewStatus
from reviewconsole.reviews.preferences import SHORTCUTS_OFF_SESSION_KEY
from reviewconsole.reviews.schemas import InvalidEdit, validated_edit
from reviewconsole.reviews.templatetags.review_ui import humanize_code

if TYPE_CHECKING:
    from types import ModuleType

REVIEW_PERM = "reviews.review_item"
# Same value as services.REJECT_OUTCOME; the queue page does not import the services (they load CrewAI).
REJECT_OUTCOME = "rejected"
APPROVE_OUTCOME = "approved"
# The item page's signed stamp of when it showed the item (`_opened_at`); a page older than this is stale.
OPENED_SALT = "reviews.item-opened"
OPENED_MAX_AGE = 24 * 60 * 60
# A page image is the same for as long as the run exists: a day before the browser asks again.
DOCUMENT_PAGE_MAX_AGE = 24 * 60 * 60
# Second reviews listed above the queue (oldest first).
SECOND_REVIEW_ROWS = 20


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _services() -> ModuleType:
    # The services import CrewAI (through the flow provider): about 2 s, needed only once an item is opened.
    from reviewconsole.reviews import services

    return services


def _require_perm(request: HttpRequest) -> None:
    if not request.user.has_perm(REVIEW_PERM):
        raise PermissionDenied


def _get_item_for_user(request: HttpRequest, item_id: UUID) -> ReviewItem:
    """The item, or 403 without the review permission, or 404 if missing or of a type the user may not review."""
    _require_perm(request)
    try:
        item = selectors.item_detail(item_id=item_id)
    except ReviewItem.DoesNotExist:
        raise Http404("No such review item") from None
    if not selectors.can_review(request.user, item.output_type):
        raise Http404("No such review item")
    return item


def _wants_fragment(request: HtmxHttpRequest) -> bool:
    # A history restore after a cache miss needs the whole page, not a fragment.
    return bool(request.htmx) and not request.htmx.history_restore_request


# A list's query string longer than this is not a list the queue made: it is ignored.
LIST_MAX_CHARS = 2000
# The queue's parameters that make a list (the page number does not: the item page seeks its neighbours).
LIST_KEYS = ("type", "status", "reason", "age", "conf_min", "conf_max", "findings", "sort", "q")
SORT_WORDS = {
    "oldest": "oldest first",
    "newest": "newest first",
    "confidence": "lowest confidence first",
    "-confidence": "highest confidence first",
}


@dataclass(frozen=True)
class ReviewList:
    """The queue list the reviewer works through: its filters, sort and search, carried from the queue to each
    item and through its decision as the queue's query string (`query`), so that next and j/k follow it.

    It is read like the queue's own filters (an invalid value drops that filter), and selects only from the
    items the user may see (`selectors.queue_items`): a list can narrow what the user reaches, never widen it.
    """

    query: str
    filters: dict[str, Any]
    query_error: str = ""

    @property
    def param(self) -> str:
        """The list as a parameter of an item's URL."""
        return urlencode({"list": self.query}) if self.query else ""

    @property
    def sort(self) -> str:
        return self.filters["sort"]

    @property
    def label(self) -> str:
        """ "in Invoices · lowest confidence first · matching “acme”"."""
        output_type = self.filters["output_type"]
        words = [f"in {humanize_code(output_type)}s" if output_type else "in the queue", SORT_WORDS[self.sort]]
        if self.filters["status"] != ReviewStatus.PENDING:
            words.append(f"{self.filters['status'] or 'any'} status")
        if self.filters["query"]:
            words.append(f"matching “{self.filters['query']}”")
        return " · ".join(words)


def _review_list(raw: str, *, output_types: Any = ()) -> tuple[ReviewList, QueueFilterForm]:
    """The list given by a query string in the queue's terms, and the queue's filter form read from it."""
    values = QueryDict(raw)
    form = QueueFilterForm(values or None, output_types=output_types)
    filters = form.filters()
    kept = [(key, values[key]) for key in LIST_KEYS if values.get(key) and key not in form.errors]
    error = " ".join(form.errors.get("q", []))
    return ReviewList(query=urlencode(kept), filters=filters, query_error=error), form


def _carried_list(data: Any) -> ReviewList:
    """The list an item page, a decision or "next" was given (`list`; an older link's `type`)."""
    raw = str(data.get("list", "")) if "list" in data else urlencode({"type": str(data.get("type", ""))[:100]})
    return _review_list(raw if len(raw) <= LIST_MAX_CHARS else "")[0]


def _item_url(item_id: Any, listing: ReviewList | None = None) -> str:
    url = reverse("reviews:item", args=[item_id])
    return f"{url}?{listing.param}" if listing is not None and listing.query else url


def _queue_url(listing: ReviewList | None = None) -> str:
    url = reverse("reviews:queue")
    return f"{url}?{listing.query}" if listing is not None and listing.query else url


def _go(request: HtmxHttpRequest, url: str) -> HttpResponse:
    """After a write: htmx follows HX-Redirect with a full page load; a plain form post gets a 302."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _short(item_id: Any) -> str:
    return str(item_id)[:8]


# ---------------------------------------------------------------- queue


@dataclass(frozen=True)
class QueueRow:
    item: ReviewItem
    overdue: bool
    claimed_by_me: bool
    claimed_by_other: bool
    awaiting_second: bool


@login_required
@require_GET
def queue(request: HtmxHttpRequest) -> HttpResponse:
    _require_perm(request)
    counts = selectors.queue_counts(user=request.user)
    allowed = selectors.reviewable_output_types(request.user)
    listing, form = _review_list(
        request.GET.urlencode(), output_types=[count.output_type for count in counts] + sorted(allowed or ())
    )
    filters = listing.filters
    # The four-eyes mark: an item approved once shows who approved it.
    items = selectors.queue_items(user=request.user, **filters).select_related("first_approval__user")
    if listing.query_error:
        # A search that cannot be read finds nothing; the form says why.
        items = items.none()
    if filters["status"] != ReviewStatus.PENDING:
        items = items.select_related("decision__user")
    page = selectors.queue_page(items, request.GET.get("page"))

    now = timezone.now()
    rows = []
    for item in page:
        live_claim = item.claimed_by_id is not None and (item.claim_expires_at or now) > now
        rows.append(
            QueueRow(
                item=item,
                overdue=item.status == ReviewStatus.PENDING and item.due_at is not None and item.due_at < now,
                claimed_by_me=live_claim and item.claimed_by_id == request.user.pk,
                claimed_by_other=live_claim and item.claimed_by_id != request.user.pk,
                awaiting_second=four_eyes.awaiting_second_approval(item),
            )
        )
    output_type = filters["output_type"]
    bulk_type = (
        output_type
        if output_type and filters["status"] == ReviewStatus.PENDING and (allowed is None or output_type in allowed)
        else ""
    )
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "rows": rows,
        "counts": counts,
        "totals": selectors.queue_totals(counts),
        "filtered": any(
            filters[key] not in (None, "")
            for key in ("output_type", "reason", "older_than_minutes", "findings", "query")
        )
        or bool(listing.query_error)
        or filters["confidence_min"] is not None
        or filters["confidence_max"] is not None
        or filters["status"] != ReviewStatus.PENDING,
        "bulk_type": bulk_type,
        "second_reviews": list(reliability_selectors.second_reviews_for(user=request.user)[:SECOND_REVIEW_ROWS]),
        "scope_type": output_type,
        "listing": listing,
        # The table's fragment also refreshes the count tabs, out of band.
        "oob": _wants_fragment(request),
    }
    name = "reviews/queue.html#queue-results" if _wants_fragment(request) else "reviews/queue.html"
    response = render(request, name, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_GET
def next_item(request: HttpRequest) -> HttpResponse:
    """The next item nobody else is on in the reviewer's list (after `after`, if given), or the list when none
    is left."""
    _require_perm(request)
    listing = _carried_list(request.GET)
    after = None
    try:
        if request.GET.get("after"):
            # Sought from, so read in full; only among the items the user may see.
            after = selectors.items_visible_to(request.user).filter(id=uuid.UUID(request.GET["after"])).first()
    except ValueError:
        after = None
    found = selectors.next_item_for(user=request.user, after=after, **listing.filters)
    if found is None:
        messages.info(request, "Nothing left to review here. Well done.")
        return redirect(_queue_url(listing))
    return redirect(_item_url(found.id, listing))


@login_required
@require_POST
def bulk(request: HtmxHttpRequest) -> HttpResponse:
    """Approve the selected items of one type; each goes through `decide` on its own, exactly once."""
    _require_perm(request)
    form = BulkApproveForm(request.POST)
    back = request.POST.get("next", "")
    if not (back.startswith(reverse("reviews:queue")) and url_has_allowed_host_and_scheme(back, {request.get_host()})):
        back = _queue_url(_carried_list({"type": request.POST.get("output_type", "")}))
    if not form.is_valid():
        messages.error(request, " ".join(error for errors in form.errors.values() for error in errors))
        return _go(request, back)
    output_type = form.cleaned_data["output_type"]
    if not selectors.can_review(request.user, output_type):
        raise PermissionDenied
    result = _services().decide_bulk(item_ids=form.cleaned_data["items"], user=request.user, output_type=output_type)
    if result.decided:
        noun = "item" if len(result.decided) == 1 else "items"
        messages.success(request, f"Approved {len(result.decided)} {output_type} {noun}, each decided on its own.")
    if result.skipped:
        reasons = "; ".join(f"{_short(item_id)}: {reason}" for item_id, reason in result.skipped.items())
        messages.warning(request, f"Skipped {len(result.skipped)}: {reasons}")
    return _go(request, back)


# ---------------------------------------------------------------- one item


def _approve_outcome(outcomes: list[str]) -> str:
    if APPROVE_OUTCOME in outcomes:
        return APPROVE_OUTCOME
    return next((o for o in outcomes if o != REJECT_OUTCOME), outcomes[0] if outcomes else APPROVE_OUTCOME)


def _policy(item: ReviewItem) -> AutonomyPolicy | None:
    """The item's type's policy, read only (a type gets its policy when its first item is created)."""
    return autonomy_selectors.policies_by_type([item.output_type]).get(item.output_type)


def _reject_reasons(policy: AutonomyPolicy | None) -> list[str]:
    return list(policy.reject_reasons) if policy is not None else default_reject_reasons()


def _decision_form(item: ReviewItem, reasons: list[str], data: Any = None) -> DecisionForm:
    return DecisionForm(
        data,
        outcomes=item.outcomes,
        reject_outcome=REJECT_OUTCOME,
        reject_reasons=reasons,
        approve_outcome=_approve_outcome(item.outcomes),
        confirmations=approval_confirmations(reason=item.reason, findings=item.findings),
    )


def _claim_context(request: HttpRequest, item: ReviewItem) -> dict[str, Any]:
    now = timezone.now()
    pending = item.status == ReviewStatus.PENDING
    live = pending and item.claimed_by_id is not None and (item.claim_expires_at or now) > now
    return {
        "item": item,
        "pending": pending,
        "claimed_by_me": live and item.claimed_by_id == request.user.pk,
        "claimed_by_other": live and item.claimed_by_id != request.user.pk,
    }


def _place(request: HttpRequest, item: ReviewItem, listing: ReviewList) -> tuple[Any, Any, str]:
    """The items before and after this one in the reviewer's list, for j/k, and where it stands in the list
    ("4 of 37 in Invoices · lowest confidence first"; empty when the item is not in it). Each is a seek or
    a capped count of the list's index range: the list is never read."""
    items = selectors.queue_items(user=request.user, **listing.filters).select_related(None)
    items = items.only("id", "created_at", "confidence")
    previous = selectors.seek(items, item, listing.sort, backwards=True)
    following = selectors.seek(items, item, listing.sort)
    if not items.filter(id=item.id).exists():
        return previous, following, ""
    place, total, more = selectors.position_in(items, item, listing.sort)
    # Past the counting cap, the place is known only to lie beyond it.
    shown = f"{min(place, total):,}{'+' if place > total else ''}"
    return previous, following, f"{shown} of {total:,}{'+' if more else ''} {listing.label}"


@dataclass(frozen=True)
class SourceInput:
    """One run input as the item page shows it: text in full, line by line and numbered; the rest as JSON."""

    name: str
    text: str
    is_json: bool
    # (number, line) for text; empty for JSON.
    lines: list[tuple[int, str]]
    # The output's fields name lines of this input (source spans): its lines get ids to highlight.
    spans: bool = False


def _run_inputs(inputs: Any, spans_input: str = "") -> list[SourceInput]:
    """The run's inputs for the page; `spans_input` is the one the output's source spans point into."""
    if not isinstance(inputs, dict):
        return [SourceInput("inputs", schema_form.display_value(schema_form.Spec("json", ""), inputs), True, [])]
    shown = []
    for name, value in inputs.items():
        if isinstance(value, str):
            lines = list(enumerate(value.splitlines(), start=1))
            shown.append(SourceInput(name, value, False, lines, spans=bool(spans_input) and name == spans_input))
        else:
            shown.append(SourceInput(name, schema_form.display_value(schema_form.Spec("json", ""), value), True, []))
    return shown


def _spans_input(item: ReviewItem) -> str:
    """The run input the flow read the output from, when it gave source spans."""
    name = (item.source_spans or {}).get("input")
    return name if isinstance(name, str) else ""


def _readable(findings: list[dict[str, Any]], errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings on fields the form could read: a value that cannot be read yet is not "not found"."""
    unread = {".".join(str(part) for part in error["loc"]) for error in errors}
    return [finding for finding in findings if finding.get("field") not in unread]


def _reading(item: ReviewItem, decision: Any, findings: list[dict[str, Any]]) -> schema_form.FormField:
    """The output for reading: as decided (with the reviewer's edit, whose changes the diff lists) or as
    produced, with the `findings` of its checks and the source lines of its fields."""
    edited = decision is not None and decision.edited_output is not None
    shown = decision.edited_output if edited else four_eyes.output_under_review(item)
    tree = schema_form.build_form(item.schema, shown, original=item.output, extra_rows=0)
    return schema_form.annotate(tree, findings, item.source_spans)


def _shown_findings(item: ReviewItem, decision: Any) -> list[dict[str, Any]]:
    """The findings of the output as the page shows it: the item's, or those recorded for the saved edit."""
    if decision is not None and decision.edited_output is not None:
        return _edit_findings(item)
    return list(item.findings or [])


def _edit_findings(item: ReviewItem) -> list[dict[str, Any]]:
    """The findings recorded for the saved edit (on the `decided` event)."""
    event = selectors.item_events(item_id=item.id).filter(kind="decided").first()
    findings = event.detail.get("findings") if event is not None and isinstance(event.detail, dict) else None
    return findings if isinstance(findings, list) else []


def _edit_tree(
    item: ReviewItem, parsed: schema_form.ParseResult | None = None, edit_errors: list[dict[str, Any]] | None = None
) -> schema_form.FormField:
    """The edit form's fields: the item's output, or what a refused edit sent, with its errors by field, and the
    findings of the output shown (the item's own, or the refused edit's)."""
    errors = [*(parsed.errors if parsed else []), *(edit_errors or [])]
    # A second approver corrects the first approver's version; the changes still show against the AI's output.
    value = parsed.raw if parsed is not None else four_eyes.output_under_review(item)
    if parsed is None:
        findings = item.findings
    else:
        findings = _readable(selectors.item_findings(item=item, output=parsed.value), parsed.errors)
    tree = schema_form.build_form(item.schema, value, errors=errors, original=item.output)
    return schema_form.annotate(tree, findings, item.source_spans)


def _edit_fragment(request: HtmxHttpRequest, item: ReviewItem, listing: ReviewList) -> HttpResponse:
    """The edit form alone, fetched when the reviewer first presses Edit; a reload if the item was decided meanwhile."""
    if item.status != ReviewStatus.PENDING or not isinstance(item.output, dict):
        return HttpResponseClientRefresh()
    editing = _edit_tree(item)
    context = {
        "item": item,
        "listing": listing,
        "opened": _opened_stamp(item),
        "editing": editing,
        "findings": _labelled(item.findings, editing),
        "approve_outcome": _approve_outcome(item.outcomes),
    }
    return render(request, "reviews/item.html#edit-form", context)


def _item_context(
    request: HtmxHttpRequest,
    item: ReviewItem,
    *,
    listing: ReviewList,
    form: DecisionForm | None = None,
    parsed: schema_form.ParseResult | None = None,
    edit_errors: list[dict[str, Any]] | None = None,
    mode: str = "read",
    reject_open: bool = False,
    alert: str = "",
    alert_level: str = "info",
) -> dict[str, Any]:
    policy = _policy(item)
    reasons = _reject_reasons(policy)
    context = _claim_context(request, item)
    pending = context["pending"]
    decision = getattr(item, "decision", None)
    previous, following, position = _place(request, item, listing)
    approve = _approve_outcome(item.outcomes)
    first = getattr(item, "first_approval", None)
    awaiting_second = four_eyes.awaiting_second_approval(item)
    # An output that is not a JSON object (a step returning a str, say) has no fields to edit: edits must be objects.
    can_edit = isinstance(item.output, dict)
    editing = pending and mode == "edit" and can_edit
    findings = _shown_findings(item, decision)
    reading = _reading(item, decision, findings)
    form = form or _decision_form(item, reasons)
    context.update(
        {
            "findings": _labelled(findings, reading),
            "decision": decision,
            "listing": listing,
            "position": position,
            "opened": _opened_stamp(item),
            "form": form,
            "confirmations": form.confirmations,
            "confirm_key": form.confirm_key,
            # A refused edit comes back with what the reviewer typed, which is not saved: leaving would lose it.
            "edit_unsaved": parsed is not None,
            # A decided item reads as it was decided: with the reviewer's edit, whose changes the diff lists; one
            # awaiting a second approval as its first approver left it.
            "reading": reading,
            # Amounts in the diff read in the currency of the output as shown.
            "output_currency": schema_form.currency_of(reading.value),
            "first_approval": first,
            "awaiting_second": awaiting_second,
            "first_approver_is_me": awaiting_second and four_eyes.is_first_approver(first, request.user),
            "needs_four_eyes": pending and not awaiting_second and item.reason in four_eyes.policy_reasons(policy),
            "editing": _edit_tree(item, parsed, edit_errors) if editing else None,
            "mode": "edit" if editing else "read",
            "reject_open": pending and reject_open,
            "approve_outcome": approve,
            "can_reject": REJECT_OUTCOME in item.outcomes,
            "can_edit": can_edit,
            "further_outcomes": [o for o in item.outcomes if o not in (approve, REJECT_OUTCOME)],
            "output_json": schema_form.display_value(schema_form.Spec("json", ""), item.output),
            "run_inputs": _run_inputs(item.run.inputs, _spans_input(item)),
            "documents": engine_selectors.run_documents(run_id=item.run_id),
            # A flow may send several output types to review: the run, and its other items, may hold types
            # this reviewer may not see.
            "run_visible": engine_selectors.run_is_visible_to(request.user, item.run),
            "earlier": list(selectors.run_earlier_items(item=item, user=request.user)),
            "events": list(selectors.item_events(item_id=item.id)),
            "produced_by": engine_selectors.run_models(run_id=item.run_id, before=item.created_at),
            "previous": previous,
            "following": following,
            "queue_url": _queue_url(listing),
            "alert": alert,
            "alert_level": alert_level,
        }
    )
    return context


@login_required
@require_GET
def item(request: HtmxHttpRequest, item_id: UUID) -> HttpResponse:
    """The item page. Looking claims nothing (browsing with j/k passes items by); starting work on it does:
    the edit form (`?edit=1`, or Edit fetching it) and the reject form (`?reject=1`) claim it, as does `claim`.
    Edit gets the edit form; the claim banner's fragment says whether it was decided meanwhile."""
    item = _get_item_for_user(request, item_id)
    listing = _carried_list(request.GET)
    working = bool(request.GET.get("edit") or request.GET.get("reject")) and item.status == ReviewStatus.PENDING
    if working and _services().review_item_claim(item_id=item.id, user=request.user):
        item = selectors.item_detail(item_id=item.id)
    target = request.htmx.target if _wants_fragment(request) else None
    if target == "claim-banner":
        context = {**_claim_context(request, item), "listing": listing, "heartbeat": True}
        response = render(request, "reviews/item.html#claim-banner", context)
    elif target == "edit-slot":
        response = _edit_fragment(request, item, listing)
    else:
        context = _item_context(
            request,
            item,
            listing=listing,
            mode="edit" if request.GET.get("edit") else "read",
            reject_open=bool(request.GET.get("reject")),
        )
        response = render(request, "reviews/item.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_POST
def claim(request: HtmxHttpRequest, item_id: UUID) -> HttpResponse:
    """Start (or keep) working on the item: claim it so others see it is taken. The page calls this on "Work on
    this", on the first key of a decision or edit, and every minute while the reviewer is active; htmx gets the
    claim banner, a plain form post the item page."""
    item = _get_item_for_user(request, item_id)
    if item.status == ReviewStatus.PENDING and _services().review_item_claim(item_id=item.id, user=request.user):
        item = selectors.item_detail(item_id=item.id)
    listing = _carried_list(request.POST)
    if not request.htmx:
        return redirect(_item_url(item.id, listing))
    context = {**_claim_context(request, item), "listing": listing, "heartbeat": True}
    return render(request, "reviews/item.html#claim-banner", context)


def _model_errors(item: ReviewItem, parsed: schema_form.ParseResult) -> list[dict[str, Any]]:
    """What the edit's validation says about the fields the form could read, so that every problem of an
    edit shows at once rather than one round at a time. Nothing is decided here: `decide` validates again."""
    try:
        validated_edit(item.output_type, parsed.value, output=item.output, schema=item.schema)
    except InvalidEdit as error:
        reported = {tuple(str(part) for part in e["loc"]) for e in parsed.errors}
        return [
            {"loc": list(e["loc"]), "msg": e["msg"]}
            for e in error.errors
            if tuple(str(part) for part in e["loc"]) not in reported
        ]
    return []


def _item_response(request: HtmxHttpRequest, item: ReviewItem, *, status: int, **options: Any) -> HttpResponse:
    """The item page again after a refused decision; htmx swaps only its main part, wherever the form sat."""
    context = _item_context(request, item, **options)
    if request.htmx:
        response = render(request, "reviews/item.html#review-main", context, status=status)
        return reswap(retarget(response, "#review-main"), "outerHTML")
    return render(request, "reviews/item.html", context, status=status)


@login_required
@require_POST
def decide(request: HtmxHttpRequest, item_id: UUID) -> HttpResponse:
    """Approve, edit and approve, reject, or take another outcome; then on to the next item.

    Refusals re-render the item: 422 with errors next to the fields (the item stays pending), 409 when
    someone else decided first or the run was cancelled.
    """
    services = _services()
    item = _get_item_for_user(request, item_id)
    listing = _carried_list(request.POST)
    if item.status != ReviewStatus.PENDING:
        message = str(services.AlreadyDecidedError(item))
        return _item_response(request, item, status=409, listing=listing, alert=message, alert_level="error")

    form = _decision_form(item, _reject_reasons(_policy(item)), request.POST)
    editing = bool(request.POST.get("edit"))
    parsed = schema_form.parse_form(item.schema, request.POST, original=item.output) if editing else None
    refused = {
        "listing": listing,
        "form": form,
        "parsed": parsed,
        # An approval refused because an edit was open on the page opens it again.
        "mode": "edit" if editing or request.POST.get("edit_open") else "read",
        "reject_open": request.POST.get("outcome") == REJECT_OUTCOME,
    }
    if parsed is not None and parsed.errors:
        return _item_response(request, item, status=422, edit_errors=_model_errors(item, parsed), **refused)
    if not form.is_valid():
        return _item_response(request, item, status=422, **refused)
    outcome = form.cleaned_data["outcome"]
    try:
        decision = services.decide(
            item_id=item.id,
            user=request.user,
            outcome=outcome,
            edited_output=parsed.value if parsed is not None else None,
            comment=form.cleaned_data["comment"],
            reason_code=form.cleaned_data["reason_code"],
            opened_at=_opened_at(request.POST.get("opened", ""), item),
        )
    except (services.AlreadyDecidedError, services.NeedsSecondApproverError) as error:
        item = selectors.item_detail(item_id=item.id)
        return _item_response(request, item, status=409, listing=listing, alert=str(error), alert_level="error")
    except services.EditValidationError as error:
        return _item_response(request, item, status=422, edit_errors=error.errors, **refused)
    except services.DecisionError as error:
        form.add_error(None, str(error))
        return _item_response(request, item, status=422, **refused)

    verb = "Edited and approved" if editing else outcome.replace("_", " ").capitalize()
    if isinstance(decision, FirstApproval):
        verb = f"{verb} (first of two approvals; it now awaits a second approver)"
    text = f"{verb}: {item.output_type} {_short(item.id)}."
    if not undo_offers.offer(request, item_id=item.id, text=text, listing_query=listing.query):
        messages.success(request, text)
    following = selectors.next_item_for(user=request.user, after=item, **listing.filters)
    if following is None:
        messages.info(request, "Nothing left to review here. Well done.")
        return _go(request, _queue_url(listing))
    return _go(request, _item_url(following.id, listing))


def _opened_stamp(item: ReviewItem) -> str:
    """When this page shows `item`, signed: the decision's handling time runs from it (`_opened_at`)."""
    return signing.dumps({"item": str(item.id), "at": timezone.now().timestamp()}, salt=OPENED_SALT)


def _opened_at(signed: str, item: ReviewItem) -> datetime | None:
    """When the reviewer's page showed `item`, from the page's signed stamp; None for a missing, forged, other
    item's or future stamp (the handling time then runs from the reviewer's claim)."""
    try:
        stamp = signing.loads(signed, salt=OPENED_SALT, max_age=OPENED_MAX_AGE)
        opened = datetime.fromtimestamp(float(stamp["at"]), tz=UTC)
    except (signing.BadSignature, KeyError, TypeError, ValueError, OverflowError):
        return None
    return opened if stamp.get("item") == str(item.id) and opened <= timezone.now() else None


def _live_edit(request: HttpRequest, item: ReviewItem) -> tuple[Any, list[dict[str, Any]]] | HttpResponse:
    """The edit being typed, from the form's fields or a JSON body, with the errors of fields not readable yet;
    or the 400/422 answer to a body that is not an edit."""
    if request.content_type != "application/json":
        parsed = schema_form.parse_form(item.schema, request.POST, original=item.output)
        return parsed.value, parsed.errors
    try:
        value = json_loads(request.body)
    except UnsafeInputError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain")
    except ValueError:
        return HttpResponseBadRequest("The body is not valid JSON.", content_type="text/plain")
    try:
        return validated_edit(item.output_type, value, output=item.output, schema=item.schema), []
    except InvalidEdit as error:
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'output'}: {e['msg']}" for e in error.errors)
        return HttpResponse(f"Invalid edit: {message}", status=422, content_type="text/plain")


@login_required
@require_POST
def recheck(request: HtmxHttpRequest, item_id: UUID) -> HttpResponse:
    """The findings of the type's checks on the edit as it stands, for the edit form to show as it changes.

    Writes nothing. Takes the edit form's fields (htmx) or the output as a JSON body; a body that is not
    JSON, holds a NUL or does not fit the type's model is refused (400, 422). Values the form cannot read
    yet (a half-typed number) are named in the fragment and checked as absent.
    """
    item = _get_item_for_user(request, item_id)
    if item.status != ReviewStatus.PENDING or not isinstance(item.output, dict):
        return HttpResponse("This item can no longer be edited.", status=409, content_type="text/plain")
    edit = _live_edit(request, item)
    if isinstance(edit, HttpResponse):
        return edit
    value, errors = edit
    findings = _readable(selectors.item_findings(item=item, output=value), errors)
    unreadable = [".".join(str(part) for part in error["loc"]) or "output" for error in errors]
    tree = schema_form.annotate(
        schema_form.build_form(item.schema, value, original=item.output, extra_rows=0), findings, item.source_spans
    )
    context = {"item": item, "findings": _labelled(findings, tree), "unreadable": unreadable, "live": True}
    return render(request, "reviews/item.html#edit-findings", context)


def _labelled(findings: list[dict[str, Any]], tree: schema_form.FormField) -> list[dict[str, Any]]:
    """Findings as the pages show them: the label and input id of the field each names ("Line items #3
    Amount"), and the links of a finding that points at another item and its run."""
    nodes = {".".join(path): node for path, node in schema_form.walk(tree)}
    labelled = []
    for item in findings:
        parts = [part for part in str(item.get("field") or "").split(".") if part]
        names = [
            f"#{int(part) + 1}" if part.isdigit() else getattr(nodes.get(".".join(parts[: depth + 1])), "label", part)
            for depth, part in enumerate(parts)
        ]
        node = nodes.get(".".join(parts)) if parts else None
        labelled.append(
            {**item, "label": " ".join(names), "input_id": node.id if node else "", **_link_urls(item.get("link"))}
        )
    return labelled


def _link_urls(link: Any) -> dict[str, str]:
    """The pages of the item and run a finding links to (the run alone for an output that went through without
    review); none for ids that are not UUIDs."""
    try:
        run_id = uuid.UUID(str(link["run"]))
        item_id = uuid.UUID(str(link["item"])) if link.get("item") is not None else None
    except (TypeError, KeyError, ValueError, AttributeError):
        return {}
    urls = {"run_url": reverse("engine:run_detail", args=[run_id])}
    if item_id is not None:
        urls["item_url"] = reverse("reviews:item", args=[item_id])
    return urls


@login_required
@require_POST
def release(request: HtmxHttpRequest, item_id: UUID) -> HttpResponse:
    """Give the item back to the queue, for someone else or later."""
    item = _get_item_for_user(request, item_id)
    _services().review_item_release(item_id=item.id, user=request.user)
    messages.info(request, f"Released {item.output_type} {_short(item.id)} back to the queue.")
    return _go(request, _queue_url(_carried_list(request.POST)))


# ---------------------------------------------------------------- preferences


@login_required
@require_POST
def undo(request: HtmxHttpRequest, item_id: UUID) -> HttpResponse:
    """Undo one's own decision within the undo window: the item is pending again, with no decision, and the
    reviewer's to decide again. Too late, or someone else's decision: the item's page says so (409, 403)."""
    services = _services()
    item = _get_item_for_user(request, item_id)
    listing = _carried_list(request.POST)
    undo_offers.withdraw(request)
    try:
        services.review_item_undo(item_id=item.id, user=request.user)
    except services.DecisionError as error:
        status = error.status if isinstance(error, services.UndoRefusedError) else 409
        item = selectors.item_detail(item_id=item.id)
        return _item_response(request, item, status=status, listing=listing, alert=str(error), alert_level="error")
    messages.success(request, f"Undone: {item.output_type} {_short(item.id)} is pending again, yours to decide.")
    return _go(request, _item_url(item.id, listing))


@login_required
@require_POST
def shortcuts(request: HttpRequest) -> HttpResponse:
    """Turn the single-key shortcuts on or off for the user (`enabled` "1" or "0"), then back to the page.

    Kept in their preferences and, for the pages to read without a query, in their session (`<body
    data-shortcuts>`); a new session reads the preference at login (`apps`).
    """
    enabled = request.POST.get("enabled")
    if enabled not in ("0", "1"):
        return HttpResponseBadRequest("enabled must be 1 (on) or 0 (off).", content_type="text/plain")
    _services().reviewer_shortcuts_set(user=request.user, enabled=enabled == "1")
    request.session[SHORTCUTS_OFF_SESSION_KEY] = enabled == "0"
    messages.info(request, f"Keyboard shortcuts are {'on' if enabled == '1' else 'off'}.")
    back = request.POST.get("next", "")
    if not (back.startswith("/") and url_has_allowed_host_and_scheme(back, {request.get_host()})):
        back = reverse("reviews:queue")
    return redirect(back)


@login_required
@require_GET
def document_page(request: HttpRequest, item_id: UUID, document_id: UUID, page: int) -> HttpResponse:
    """Page `page` of the document the item's run was read from, as a PNG; seen by whoever may see the item.

    The image of a page never changes: it is cached by the browser (privately: it is behind a login) and
    revalidated by its ETag.
    """
    item = _get_item_for_user(request, item_id)
    try:
        document = engine_selectors.run_document_get(run_id=item.run_id, document_id=document_id)
    except RunDocument.DoesNotExist:
        raise Http404("No such document") from None
    etag = documents.page_etag(document, page)
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    else:
        try:
            response = HttpResponse(documents.page_png(document, page), content_type="image/png")
        except documents.DocumentPageError as error:
            raise Http404(str(error)) from None
    response["ETag"] = etag
    patch_cache_control(response, private=True, max_age=DOCUMENT_PAGE_MAX_AGE)
    return response
