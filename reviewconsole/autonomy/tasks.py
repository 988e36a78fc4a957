"""django-q2 tasks for autonomy: thin wrappers around the guard, autopilot and the rollup refresh."""

from __future__ import annotations

from typing import Any

from reviewconsole.autonomy.guard import autopilot, guard_check
from reviewconsole.autonomy.models import PolicyChange
from reviewconsole.autonomy.services import rollup_refresh


def check_autonomy(output_type: str) -> list[PolicyChange]:
    """After a verdict: the regression guard, then (in mode `auto`, if the guard did nothing) autopilot.

    Idempotent: run twice on the same data, the second run finds nothing to
    change. Returns the automatic changes made.
    """
    change = guard_check(output_type)
    if change is not None:
        return [change]
    change = autopilot(output_type)
    return [change] if change is not None else []


def refresh_rollups() -> dict[str, Any]:
    """Hourly (schedule added by migration 0004): roll up the days that ended, recompute the stale ones."""
    return rollup_refresh()
