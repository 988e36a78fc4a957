"""What a reviewer must confirm, explicitly, before approving an item in the web UI.

An approval is consequential when the output's checks found an error in it, or when it was sent to review for
its high value: a reflexive `a` must not pass such an output on. The item page then asks for a tick naming
what is being approved despite, and its decision form refuses an approval without it; bulk approval skips
such items, so that each is approved on its own page. The JSON API does not ask: its clients are programs,
deliberate by construction.

Pure functions over an item's reason and findings (plain values), so that the rule reads in one place and
a caller holding re-checked findings can pass those.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reviewconsole.reviews.models import ReviewReason

ERROR_SEVERITY = "error"


@dataclass(frozen=True)
class Confirmation:
    """One thing the reviewer approves despite. `code` is stable across page loads; `text` is what they read."""

    code: str
    text: str

    def __str__(self) -> str:
        return self.text


def _error_findings(findings: Any) -> list[dict[str, Any]]:
    # Findings are stored JSON written by checks: tolerate a malformed entry rather than break the page.
    if not isinstance(findings, list):
        return []
    return [f for f in findings if isinstance(f, dict) and f.get("severity") == ERROR_SEVERITY]


def approval_confirmations(*, reason: str, findings: Any) -> list[Confirmation]:
    """What an approval of an item with this review reason and these findings must confirm (empty: nothing).

    Error findings, in their order, then the high value. Warnings and infos ask for nothing: they inform.
    """
    needed = []
    for finding in _error_findings(findings):
        field = str(finding.get("field") or "")
        # Messages are sentences; the tick lists them joined by semicolons, so their own full stop goes.
        message = str(finding.get("message") or finding.get("check") or "error").rstrip(". ")
        needed.append(
            Confirmation(
                code=f"finding:{finding.get('check', '')}:{field}", text=f"{field}: {message}" if field else message
            )
        )
    if reason == ReviewReason.HIGH_VALUE:
        needed.append(Confirmation(code=f"reason:{reason}", text="sent for review as high value"))
    return needed


def confirmation_key(confirmations: Sequence[Confirmation]) -> str:
    """The value the confirmation box posts: a digest of what it confirmed, so that a tick given for one set of
    findings does not carry over to another (the checks ran again meanwhile). Empty when nothing is needed."""
    if not confirmations:
        return ""
    codes = "\n".join(sorted(c.code for c in confirmations))
    return hashlib.sha256(codes.encode()).hexdigest()[:16]


def bulk_skip_reason(confirmations: Sequence[Confirmation]) -> str:
    """Why bulk approval leaves an item for its own page, naming what must be confirmed there."""
    return "Needs a deliberate approval on its own page: " + "; ".join(c.text for c in confirmations)
