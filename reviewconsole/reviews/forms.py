"""Browser forms of the review pages: queue filters, a decision, and bulk approval.

The edited output itself is not a Django form: `schema_form` generates it from the item's JSON schema and
the output type's pydantic model validates it (in `services.decide`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django import forms

from reviewconsole.reviews.confirmations import Confirmation, confirmation_key
from reviewconsole.reviews.models import ReviewStatus
from reviewconsole.reviews.reasons import review_reasons
from reviewconsole.reviews.search import QUERY_MAX_CHARS
from reviewconsole.reviews.templatetags.review_ui import humanize_code

STATUS_ALL = "all"

AGE_CHOICES = [
    ("", "Any age"),
    ("15", "Older than 15 min"),
    ("60", "Older than 1 h"),
    ("240", "Older than 4 h"),
    ("1440", "Older than 1 day"),
    ("10080", "Older than 1 week"),
]

SORT_CHOICES = [
    ("oldest", "Oldest first"),
    ("newest", "Newest first"),
    ("confidence", "Lowest confidence"),
    ("-confidence", "Highest confidence"),
]

FINDINGS_CHOICES = [("", "Any findings"), ("errors", "With errors"), ("any", "With findings")]

BULK_MAX_ITEMS = 200


class QueueFilterForm(forms.Form):
    """GET filters of the queue. An invalid value drops that one filter, never the page."""

    type = forms.CharField(required=False, max_length=100, label="Type", widget=forms.Select)
    status = forms.ChoiceField(
        required=False,
        label="Status",
        choices=[*((s.value, s.label) for s in ReviewStatus), (STATUS_ALL, "Any status")],
    )
    # Choices set per form: the flows' own reasons join the built-in ones.
    reason = forms.ChoiceField(required=False, label="Reason")
    age = forms.TypedChoiceField(required=False, label="Age", choices=AGE_CHOICES, coerce=int, empty_value=None)
    conf_min = forms.FloatField(
        required=False,
        label="Confidence from",
        min_value=0,
        max_value=1,
        widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": "0"}),
    )
    conf_max = forms.FloatField(
        required=False,
        label="to",
        min_value=0,
        max_value=1,
        widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": "1"}),
    )
    findings = forms.ChoiceField(required=False, label="Checks", choices=FINDINGS_CHOICES)
    sort = forms.ChoiceField(required=False, label="Sort", choices=SORT_CHOICES)
    # Words every match holds in its summary, output or run input (`search`). A NUL or an over-long query is
    # refused with the field's error, and the queue then shows nothing rather than everything.
    q = forms.CharField(
        required=False,
        max_length=QUERY_MAX_CHARS,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Vendor, number, any text"}),
    )

    def __init__(self, data: Any = None, *, output_types: Iterable[str]) -> None:
        super().__init__(data)
        types = sorted(set(output_types))
        current = (data or {}).get("type", "")
        if current and current not in types and len(current) <= 100:
            types.append(current)
        self.fields["type"].widget.choices = [("", "All types"), *((t, t) for t in types)]
        reasons = ((reason.code, reason.label) for reason in review_reasons().values())
        self.fields["reason"].choices = [("", "Any reason"), *reasons]

    def filters(self) -> dict[str, Any]:
        """Keyword arguments of `selectors.queue_items`, from the valid fields only."""
        cleaned: dict[str, Any] = {}
        if self.is_bound:
            self.is_valid()
            cleaned = self.cleaned_data
        status = cleaned.get("status") or ReviewStatus.PENDING
        return {
            "status": "" if status == STATUS_ALL else status,
            "output_type": cleaned.get("type") or "",
            "reason": cleaned.get("reason") or "",
            "older_than_minutes": cleaned.get("age"),
            "confidence_min": cleaned.get("conf_min"),
            "confidence_max": cleaned.get("conf_max"),
            "findings": cleaned.get("findings") or "",
            "sort": cleaned.get("sort") or "oldest",
            "query": cleaned.get("q") or "",
        }


class DecisionForm(forms.Form):
    """The outcome and its notes; the edited output is parsed separately by `schema_form`."""

    outcome = forms.ChoiceField()
    reason_code = forms.ChoiceField(required=False, label="Reason")
    comment = forms.CharField(
        required=False,
        max_length=4000,
        label="Comment",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What is wrong, for the record and the flow"}),
    )
    edit = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # Set by the page while its edit form is open (see `clean`).
    edit_open = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # The tick of a consequential approval: the `confirmation_key` of what the reviewer approves despite.
    confirm = forms.CharField(required=False, max_length=64)

    def __init__(
        self,
        data: Any = None,
        *,
        outcomes: Sequence[str],
        reject_outcome: str,
        reject_reasons: Sequence[str],
        approve_outcome: str = "",
        confirmations: Sequence[Confirmation] = (),
    ) -> None:
        super().__init__(data, auto_id="decide-%s")
        self.reject_outcome = reject_outcome
        self.reject_reasons = list(reject_reasons)
        self.approve_outcome = approve_outcome
        self.confirmations = list(confirmations)
        self.confirm_key = confirmation_key(self.confirmations)
        self.fields["outcome"].choices = [(o, o) for o in outcomes]
        reasons = [(r, humanize_code(r)) for r in reject_reasons]
        self.fields["reason_code"].choices = [("", "Choose a reason…"), *reasons]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        rejecting = cleaned.get("outcome") == self.reject_outcome
        if rejecting and self.reject_reasons and not cleaned.get("reason_code"):
            self.add_error("reason_code", "Choose why you reject this output.")
        if rejecting and cleaned.get("edit"):
            self.add_error(None, "A rejection cannot carry an edited output.")
        if not rejecting:
            cleaned["reason_code"] = ""
        if cleaned.get("outcome") == self.approve_outcome:
            self._clean_approval(cleaned)
        return cleaned

    def _clean_approval(self, cleaned: dict[str, Any]) -> None:
        # The server cannot see the browser's fields, only what the page sends. A page whose edit form is open
        # submits its approval with the edit (the approve button belongs to the edit form then); an approval
        # without it from such a page would record the original output as approved unchanged, and is refused.
        if cleaned.get("edit_open") and not cleaned.get("edit"):
            self.add_error(
                None,
                "An edit is open on this page, and this approval did not carry it: approve it with "
                "“approve as edited”, or cancel the edit first. Nothing was recorded.",
            )
        if not self.confirmations:
            return
        what = "; ".join(c.text for c in self.confirmations)
        given = cleaned.get("confirm") or ""
        if not given:
            self.add_error("confirm", f"Confirm that you approve despite: {what}. Nothing was recorded.")
        elif given != self.confirm_key:
            self.add_error(
                "confirm",
                f"What needs confirming changed since the page was loaded; check it and confirm again: {what}.",
            )


class UUIDListField(forms.Field):
    """Repeated `name=<uuid>` values, as checkboxes send them."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": "Select at least one item.",
        "invalid": "That is not an item id.",
        "too_many": "Select at most %(limit)d items at once.",
    }

    def to_python(self, value: Any) -> list[uuid.UUID]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        try:
            ids = list(dict.fromkeys(uuid.UUID(str(v)) for v in values))
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if len(ids) > BULK_MAX_ITEMS:
            raise forms.ValidationError(
                self.error_messages["too_many"], code="too_many", params={"limit": BULK_MAX_ITEMS}
            )
        return ids


class BulkApproveForm(forms.Form):
    output_type = forms.CharField(max_length=100)
    items = UUIDListField()
    next = forms.CharField(required=False, max_length=2000)


class SecondReviewForm(forms.Form):
    """A blind second review: the outcome (an edit comes from `schema_form`, as in a decision) and a comment."""

    outcome = forms.ChoiceField()
    comment = forms.CharField(required=False, max_length=5000)

    def __init__(self, data: Any = None, *, outcomes: Sequence[str]) -> None:
        super().__init__(data)
        self.fields["outcome"].choices = [(o, humanize_code(o)) for o in outcomes]


class AdjudicationForm(forms.Form):
    """A manager's ruling on a disagreement: which decision was right, and why."""

    upheld = forms.ChoiceField(
        choices=[("first", "The first decision"), ("second", "The second review")], widget=forms.RadioSelect
    )
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
