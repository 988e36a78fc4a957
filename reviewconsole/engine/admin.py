"""Read-mostly admin: runs change state through services, never by editing rows."""

from django.contrib import admin

from reviewconsole.engine.models import ApiToken, Checkpoint, FlowRun, RunTransition, Step
from reviewconsole.engine.selectors import runs_visible_to


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class TransitionInline(admin.TabularInline):
    model = RunTransition
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "actor", "note", "at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FlowRun)
class FlowRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "flow_name", "status", "attempts", "created_at", "finished_at"]
    list_filter = ["status", "flow_name"]
    search_fields = ["id"]
    inlines = [TransitionInline]

    def get_queryset(self, request):
        # Managers are staff: the admin must hide the runs of types outside their limit, as the run pages do.
        return super().get_queryset(request) & runs_visible_to(request.user)


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["flow_uuid", "sequence", "method", "occurrence", "outcome", "created_at"]
    search_fields = ["flow_uuid"]


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    list_display = ["run", "kind", "method", "status", "duration_ms", "tokens_in", "tokens_out"]
    list_filter = ["kind", "status"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "user", "created_at", "last_used_at", "expires_at"]
