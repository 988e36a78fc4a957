from django.contrib import admin

from reviewconsole.engine.admin import ReadOnlyAdmin
from reviewconsole.reviews.models import Decision, ReviewItem


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "output_type", "reason", "confidence", "status", "created_at"]
    list_filter = ["status", "output_type", "reason"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["item", "outcome", "user", "at"]
