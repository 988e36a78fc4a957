"""django-q2 tasks for review items: thin wrappers around services."""

from __future__ import annotations

from reviewconsole.logs import log_ids
from reviewconsole.reviews import notifications, pending_counts, services


def notify_new_item(item_id: str) -> None:
    """Send the configured webhook and email for a new review item."""
    with log_ids(item_id=item_id):
        notifications.notify_new_item(item_id=item_id)


def expire_overdue_items() -> int:
    """Decide items past their expiry with their type's default outcome (scheduled every minute)."""
    return services.review_items_expire_overdue()


def recount_pending() -> int:
    """Correct the queue tabs' pending counts from the items (scheduled hourly); returns how many were wrong."""
    return len(pending_counts.pending_counts_recount())
