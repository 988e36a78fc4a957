"""The evidence windows a figure can be read over, and the words a page prints for each.

- `all`: every verdict ever given.
- `since_change`: since the last policy change that affects routing (threshold, always_review, audit_rate),
  so the evidence comes from one regime of the gate; a policy never changed that way counts from its creation.
  Other changes (target, reject reasons, SLA…) leave which outputs are reviewed, and with what chance, alone.
- `recent`: the last `settings.AUTONOMY_WINDOW_DAYS` days, so a drift shows instead of being averaged away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import dateformat, timezone

from reviewconsole.autonomy.models import AutonomyPolicy, PolicyChange

WINDOW_KEYS = ("all", "since_change", "recent")
# Policy fields that change which outputs the gate sends to review, or with what probability.
ROUTING_FIELDS = ("threshold", "always_review", "audit_rate")


@dataclass(frozen=True)
class Window:
    """A period of evidence: gate decisions created at or after `since` (None: all time); `label` for the page."""

    key: str
    since: datetime | None
    label: str


def _day(moment: datetime) -> str:
    return dateformat.format(timezone.localtime(moment), "j M Y")


def window_for(policy: AutonomyPolicy, key: str, now: datetime | None = None) -> Window:
    """The window `key` (one of WINDOW_KEYS) of a type's evidence as of `now`. At most one query.

    Raises ValueError naming an unknown key.
    """
    now = now or timezone.now()
    if key == "all":
        return Window(key, None, "all time")
    if key == "recent":
        days = settings.AUTONOMY_WINDOW_DAYS
        return Window(key, now - timedelta(days=days), "the last day" if days == 1 else f"the last {days} days")
    if key == "since_change":
        changed = (
            PolicyChange.objects.filter(policy=policy, at__lte=now, changes__has_any_keys=list(ROUTING_FIELDS))
            .order_by("-at", "-id")
            .values_list("at", flat=True)
            .first()
        )
        if changed is None:
            return Window(key, policy.created_at, f"since the policy was created ({_day(policy.created_at)})")
        return Window(key, changed, f"since the last policy change ({_day(changed)})")
    raise ValueError(f"unknown evidence window {key!r}: expected one of {', '.join(WINDOW_KEYS)}")
