"""Autonomy in the Django admin: policies for managers only, changed through `policy_update` with a reason.

Saving never writes the row directly: the admin form's changes go through `policy_update`, which
locks the row, records who, when, from→to and the required reason as a PolicyChange (shown inline,
read-only), exactly as the console's policy page and the API do. Gate decisions are a read-only list.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from reviewconsole.autonomy.models import AutonomyPolicy, GateDecision, PolicyChange
from reviewconsole.autonomy.services import (
    EDITABLE_POLICY_FIELDS,
    PolicyError,
    policy_ensure,
    policy_update,
    review_reasons_check,
)
from reviewconsole.reviews.selectors import scoped_output_types

MANAGE_PERM = "autonomy.manage_autonomy"


def _manager(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.has_perm(MANAGE_PERM)


class ManagersOnly:
    """Every admin permission is the manager's permission, whatever the model's own ones say.

    A manager limited to some output types (the limit that also hides other types' runs and
    dashboards) sees the rows of those types only; others are missing, as on the console's pages.
    """

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _manager(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _manager(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        rows = super().get_queryset(request)
        allowed = scoped_output_types(request.user)
        return rows if allowed is None else rows.filter(output_type__in=allowed)


class PolicyAdminForm(forms.ModelForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        help_text="Required: kept in the change history with your name.",
    )

    # The output types the manager is limited to (None: every type); set by the admin for each request.
    allowed_types: set[str] | None = None

    class Meta:
        model = AutonomyPolicy
        fields = ["output_type", *EDITABLE_POLICY_FIELDS]

    def clean_output_type(self) -> str:
        output_type = self.cleaned_data["output_type"]
        if self.allowed_types is not None and output_type not in self.allowed_types:
            raise forms.ValidationError("You may not manage this output type.")
        return output_type

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why you make this change.")
        return reason

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The same rules `policy_update` applies, checked here so they show on the form.
        for field in ("threshold", "audit_rate", "target_accuracy", "auto_min_threshold", "auto_max_threshold"):
            value = data.get(field)
            if value is not None and not 0 <= value <= 1:
                self.add_error(field, "Must be between 0 and 1.")
        low, high = data.get("auto_min_threshold"), data.get("auto_max_threshold")
        if low is not None and high is not None and low > high:
            self.add_error("auto_max_threshold", "Must not be below the lowest automatic threshold.")
        reasons = data.get("reject_reasons")
        if reasons is not None and (
            not isinstance(reasons, list) or not all(isinstance(r, str) and r.strip() for r in reasons)
        ):
            self.add_error("reject_reasons", 'A JSON list of reason codes, e.g. ["wrong_data", "other"].')
        if "four_eyes_reasons" in data:
            try:
                review_reasons_check("four_eyes_reasons", data["four_eyes_reasons"])
            except PolicyError as error:
                self.add_error("four_eyes_reasons", str(error))
        return data


class PolicyChangeInline(admin.TabularInline):
    model = PolicyChange
    extra = 0
    can_delete = False
    fields = ["at", "by", "automatic", "changes", "reason"]
    readonly_fields = fields
    ordering = ["-at", "-id"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _manager(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AutonomyPolicy)
class AutonomyPolicyAdmin(ManagersOnly, admin.ModelAdmin):
    form = PolicyAdminForm
    list_display = ["output_type", "threshold", "always_review", "audit_rate", "target_accuracy", "mode", "updated_at"]
    list_filter = ["mode", "always_review"]
    search_fields = ["output_type"]
    inlines = [PolicyChangeInline]
    fieldsets = [
        (None, {"fields": ["output_type", "threshold", "always_review", "audit_rate", "reason"]}),
        (
            "Recommendation",
            {"fields": ["target_accuracy", "min_samples", "mode", "auto_min_threshold", "auto_max_threshold"]},
        ),
        (
            "Review queue",
            {"fields": ["reject_reasons", "four_eyes_reasons", "sla_minutes", "expiry_minutes", "expiry_outcome"]},
        ),
    ]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> type:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.allowed_types = scoped_output_types(request.user)
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The type is the policy's identity: flows and statistics refer to it by name.
        return ["output_type"] if obj is not None else []

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _manager(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _manager(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting would take the history with it; a type goes back to full review instead.
        return False

    def save_model(self, request: HttpRequest, obj: AutonomyPolicy, form: forms.ModelForm, change: bool) -> None:
        """Apply the edited fields through `policy_update`, never by saving the row as the form left it."""
        if not change:
            obj.pk = policy_ensure(output_type=form.cleaned_data["output_type"]).pk
        fields = [f for f in EDITABLE_POLICY_FIELDS if f in form.changed_data or not change]
        changes = {field: form.cleaned_data[field] for field in fields}
        try:
            policy_update(
                output_type=obj.output_type, changes=changes, by=request.user, reason=form.cleaned_data["reason"]
            )
        except PolicyError as error:
            # The form checked the same rules; this is a change that raced another one.
            self.message_user(request, f"Not saved: {error}", level="error")
        obj.refresh_from_db()


@admin.register(GateDecision)
class GateDecisionAdmin(ManagersOnly, admin.ModelAdmin):
    list_display = [
        "id",
        "output_type",
        "confidence",
        "threshold",
        "route",
        "reason",
        "audit",
        "verdict",
        "flow_version",
        "created_at",
    ]
    # No filter or date hierarchy by type or day: each would scan every decision for its choices.
    list_filter = ["route", "verdict", "audit"]
    search_fields = ["=output_type"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
