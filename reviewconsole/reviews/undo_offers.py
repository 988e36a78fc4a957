"""The undo bar: after a decision, the page its reviewer lands on offers to undo it until the window ends.

The offer is kept in the reviewer's session, since the decision's response is a redirect to another page (the
next item, or the queue). Only the offer lives here; whether an undo is still possible is
`services.review_item_undo`'s to say, whatever the bar showed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

SESSION_KEY = "undo_offer"


def offer(request: HttpRequest, *, item_id: Any, text: str, listing_query: str) -> bool:
    """Offer to undo the decision just taken on the item (`text` says what it was); False when undo is off."""
    if not settings.UNDO_SECONDS:
        return False
    until = timezone.now() + timedelta(seconds=settings.UNDO_SECONDS)
    request.session[SESSION_KEY] = {
        "item": str(item_id),
        "text": text,
        "until": until.isoformat(),
        "list": listing_query,
    }
    return True


def current(request: HttpRequest) -> dict[str, Any] | None:
    """The decision this reviewer may still undo, with its seconds left; None (and forgotten) once past."""
    session = getattr(request, "session", None)
    found = session.get(SESSION_KEY) if session is not None else None
    until = parse_datetime(str(found.get("until", ""))) if isinstance(found, dict) else None
    if until is None or until <= timezone.now():
        if found is not None:
            del session[SESSION_KEY]
        return None
    return {**found, "seconds_left": max(1, int((until - timezone.now()).total_seconds()))}


def withdraw(request: HttpRequest) -> None:
    """Forget the offer (it was taken up, or refused)."""
    request.session.pop(SESSION_KEY, None)
