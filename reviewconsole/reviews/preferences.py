"""A reviewer's preferences as the pages read them: from the session, without a query per page.

The stored preference (`ReviewerPreference`) is copied into the session when the user signs in and whenever
they change it (`views.shortcuts`); `base.html` reads the session's copy into `<body data-shortcuts>`.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from reviewconsole.reviews.models import ReviewerPreference

SHORTCUTS_OFF_SESSION_KEY = "review_shortcuts_off"


def shortcuts_load_on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """`user_logged_in` receiver: the user's shortcut preference into their new session."""
    if request is None or not hasattr(request, "session"):
        return
    enabled = ReviewerPreference.objects.filter(user=user).values_list("shortcuts_enabled", flat=True).first()
    request.session[SHORTCUTS_OFF_SESSION_KEY] = enabled is False
