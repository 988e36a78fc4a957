"""Browser input for autonomy: the what-if threshold, the policy form (applied through `policy_update`) and the
export form."""

from __future__ import annotations

from typing import Any

from django import forms

from reviewconsole.autonomy.models import POLICY_INT_MAX, AutonomyPolicy, PolicyMode
from reviewconsole.autonomy.services import EDITABLE_POLICY_FIELDS
from reviewconsole.engine import registry
from reviewconsole.reviews.reasons import reason_label, review_reasons

FRACTION = {"min_value": 0.0, "max_value": 1.0}
STEP = {"step": "0.01", "inputmode": "decimal"}


def _fraction(label: str, help_text: str = "", **attrs: str) -> forms.FloatField:
    return forms.FloatField(
        label=label, help_text=help_text, widget=forms.NumberInput(attrs={**STEP, **attrs}), **FRACTION
    )


def _minutes(label: str, help_text: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        help_text=help_text,
        required=False,
        min_value=1,
        max_value=POLICY_INT_MAX,
        widget=forms.NumberInput(attrs={"step": "1"}),
    )


class WhatIfForm(forms.Form):
    """The threshold a manager is trying out."""

    threshold = forms.FloatField(**FRACTION)


class CarryOverForm(forms.Form):
    """A manager carrying the evidence of an earlier flow version over to the current one, and why."""

    carry_over_from = forms.ChoiceField(label="Evidence of version")
    carry_over_reason = forms.CharField(
        label="Reason",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the earlier version's verdicts hold for the current one (kept in the change history).",
    )

    def __init__(self, *args: Any, versions: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["carry_over_from"].choices = versions


class PolicyForm(forms.Form):
    """Every editable policy field, and the reason the change is made (required, kept in the history)."""

    review_all = forms.BooleanField(
        label="Review everything (no threshold)",
        required=False,
        widget=forms.CheckboxInput(attrs={"data-review-all": ""}),
    )
    threshold = forms.FloatField(
        label="Threshold",
        required=False,
        help_text="Outputs with a confidence at or above it skip review, except for audit samples.",
        widget=forms.NumberInput(attrs={**STEP, "min": "0", "max": "1", "data-threshold-number": ""}),
        **FRACTION,
    )
    audit_rate = _fraction("Audit rate", "Share of above-threshold outputs still reviewed (0.05 = 5%).")
    always_review = forms.BooleanField(
        label="Always review (overrides the threshold)",
        required=False,
    )
    review_failed_checks = forms.BooleanField(
        label="Review outputs that fail a check",
        required=False,
        help_text="An output with an error finding of its type's checks goes to a person, whatever its confidence.",
    )
    target_accuracy = _fraction("Target accuracy", "Lower bound the recommendation must reach (0.95 = 95%).")
    min_samples = forms.IntegerField(
        label="Minimum samples",
        min_value=1,
        max_value=POLICY_INT_MAX,
        help_text="Reviewed outputs needed at or above a threshold before it can be recommended.",
        widget=forms.NumberInput(attrs={"step": "1"}),
    )
    mode = forms.ChoiceField(
        label="Mode",
        choices=PolicyMode.choices,
        help_text="“Automatic” applies the recommendation by itself, within the bounds below.",
    )
    auto_min_threshold = _fraction("Lowest automatic", "Autopilot never sets a lower threshold.")
    auto_max_threshold = _fraction("Highest automatic", "Autopilot never sets a higher threshold.")
    sla_minutes = _minutes("SLA (minutes)", "Pending items older than this are flagged overdue. Empty: no SLA.")
    expiry_minutes = _minutes("Expiry (minutes)", "Pending items are decided with the expiry outcome after this.")
    expiry_outcome = forms.CharField(
        label="Expiry outcome", required=False, max_length=100, help_text="The outcome an expired item gets."
    )
    reject_reasons = forms.CharField(
        label="Reject reasons",
        help_text="One code per line; a reviewer picks one to reject.",
        widget=forms.Textarea(attrs={"rows": 4, "class": "input--code"}),
    )
    four_eyes_reasons = forms.MultipleChoiceField(
        label="Four eyes for",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Items sent to review for these reasons need two different approvers; either may reject.",
    )
    exclude_marked_approvals = forms.BooleanField(
        label="Leave marked approvals out of the evidence",
        required=False,
        help_text="Bulk approvals, and approvals given within seconds of opening the item, count in no accuracy "
        "figure. The dashboard says how many were left out.",
    )
    second_review_rate = _fraction(
        "Second review rate",
        "Share of decided items another reviewer reviews again, blind, to measure agreement (0.1 = 10%).",
    )
    reason = forms.CharField(
        label="Reason for this change",
        max_length=2000,
        help_text="Kept in the change history with your name.",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "e.g. Audited accuracy above 0.80 is 97% (n=412)"}),
    )

    def __init__(self, *args: Any, policy: AutonomyPolicy, **kwargs: Any) -> None:
        kwargs.setdefault("initial", self.initial_for(policy))
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.fields["threshold"].widget.attrs["data-initial"] = (
            "" if policy.threshold is None else f"{policy.threshold:g}"
        )
        self.fields["four_eyes_reasons"].choices = self.review_reason_choices(policy)

    @staticmethod
    def review_reason_choices(policy: AutonomyPolicy) -> list[tuple[str, str]]:
        """The built-in reasons, those the flows producing this type declare, and any the policy already names."""
        flows = [spec for spec in registry.all_flows() if policy.output_type in spec.output_types]
        choices = {code: reason.label for code, reason in review_reasons(flows).items()}
        for code in policy.four_eyes_reasons or ():
            choices.setdefault(code, reason_label(code))
        return list(choices.items())

    @staticmethod
    def initial_for(policy: AutonomyPolicy) -> dict[str, Any]:
        initial = {field: getattr(policy, field) for field in EDITABLE_POLICY_FIELDS}
        initial["reject_reasons"] = "\n".join(policy.reject_reasons or [])
        initial["review_all"] = policy.threshold is None
        return initial

    def clean_reject_reasons(self) -> list[str]:
        reasons: list[str] = []
        for line in self.cleaned_data["reject_reasons"].replace(",", "\n").splitlines():
            code = line.strip()
            if len(code) > 100:
                raise forms.ValidationError(f"'{code[:20]}…' is longer than 100 characters.")
            if code and code not in reasons:
                reasons.append(code)
        if not reasons:
            raise forms.ValidationError("Give at least one reject reason.")
        return reasons

    def clean_four_eyes_reasons(self) -> list[str]:
        # In the order the choices list them, so that resubmitting the same ticks changes nothing.
        chosen = set(self.cleaned_data["four_eyes_reasons"])
        return [code for code, _ in self.fields["four_eyes_reasons"].choices if code in chosen]

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why you make this change.")
        return reason

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("review_all"):
            data["threshold"] = None
        elif "threshold" in data and data["threshold"] is None:
            self.add_error("threshold", "Enter a threshold between 0 and 1, or tick “Review everything”.")
        low, high = data.get("auto_min_threshold"), data.get("auto_max_threshold")
        if low is not None and high is not None and low > high:
            self.add_error("auto_max_threshold", "The highest threshold must not be below the lowest.")
        return data

    def changes(self) -> dict[str, Any]:
        """The policy fields as submitted; `policy_update` records only those that differ."""
        return {field: self.cleaned_data[field] for field in EDITABLE_POLICY_FIELDS}


class ExportForm(forms.Form):
    """The days whose decisions an export covers, both inclusive; either may be left open."""

    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start is not None and end is not None and start > end:
            self.add_error("date_from", f"The start date {start.isoformat()} is after the end date {end.isoformat()}.")
        return cleaned
