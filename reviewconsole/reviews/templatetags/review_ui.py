"""Presentation helpers of the review pages: ages, SLA flags, reason chips and confidence meters."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from reviewconsole.reviews import schema_form, undo_offers
from reviewconsole.reviews.reasons import reason_label

register = template.Library()

_CLASS_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def _token(value: object) -> str:
    """A stored value reduced to a class-name-safe token, so it cannot add classes."""
    return _CLASS_UNSAFE.sub("-", str(value).strip().lower()).strip("-") or "unknown"


def span(delta: timedelta) -> str:
    """A duration the way people say it in a queue: "45 s", "12 min", "3 h", "2 d"."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400 * 2:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@register.filter
def age(value: datetime | None) -> str:
    """How long ago `value` was."""
    return span(timezone.now() - value) if value else "—"


@register.simple_tag
def sla(due_at: datetime | None, status: str = "pending") -> SafeString:
    """An overdue flag ("Overdue 20 min") or the time left ("due in 2 h"); nothing without an SLA or once decided."""
    if due_at is None or status != "pending":
        return SafeString("")
    left = due_at - timezone.now()
    local = timezone.localtime(due_at).strftime("%Y-%m-%d %H:%M %Z")
    if left.total_seconds() < 0:
        return format_html('<span class="flag flag--overdue" title="Due {}">Overdue {}</span>', local, span(-left))
    return format_html('<span class="sla" title="Due {}">due in {}</span>', local, span(left))


@register.simple_tag
def reason_chip(code: str) -> SafeString:
    """A review reason as a chip with its label: built in, declared by its flow, or else its code made readable."""
    return format_html('<span class="chip chip--{}">{}</span>', _token(code), reason_label(code))


@register.filter(name="reason_label")
def reason_label_filter(code: str) -> str:
    return reason_label(code)


@register.simple_tag
def confidence(value: float | None) -> SafeString:
    """A meter and the number; the meter's colour bands are set by its low/high/optimum attributes."""
    if value is None:
        return format_html('<span class="conf conf--none muted">{}</span>', "—")
    return format_html(
        '<span class="conf" title="Confidence {}"><meter class="conf__meter" min="0" max="1" low="0.5" high="0.8" '
        'optimum="1" value="{}">{}</meter><span class="conf__num">{}</span></span>',
        f"{value:.2f}",
        f"{min(max(value, 0), 1):.4f}",
        f"{value:.2f}",
        f"{value:.2f}",
    )


@register.simple_tag
def finding_count(item: Any) -> SafeString:
    """The queue's findings cell: how many errors, and how many findings in all."""
    if not item.finding_count:
        return format_html('<span class="muted">{}</span>', "0")
    if item.error_count:
        noun = "error" if item.error_count == 1 else "errors"
        return format_html(
            '<span class="findings-count findings-count--error" title="{} findings">{} {}</span>',
            item.finding_count,
            item.error_count,
            noun,
        )
    return format_html('<span class="findings-count" title="No errors">{}</span>', item.finding_count)


# Outcomes are named as results ("approved"); their buttons say what the click does.
OUTCOME_VERBS = {
    "approved": "Approve",
    "rejected": "Reject",
    "escalated": "Escalate",
    "accepted": "Accept",
    "declined": "Decline",
    "deferred": "Defer",
    "flagged": "Flag",
    "retried": "Retry",
}


@register.filter
def outcome_verb(outcome: Any) -> str:
    """The button label for an outcome: "approved" → "Approve"; other names as written, humanized."""
    return OUTCOME_VERBS.get(str(outcome), humanize_code(outcome))


@register.simple_tag
def span_between(start: datetime | None, end: datetime | None) -> str:
    return span(end - start) if start and end else "—"


@register.filter
def humanize_code(value: Any) -> str:
    """`wrong_data` → "Wrong data"."""
    text = str(value or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@register.filter
def as_json(value: Any) -> str:
    """A JSON value on one line for tables; the template escapes it."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


@register.simple_tag
def diff_value(value: Any, path: str, currency: str = "") -> str:
    """One side of a diff's change: an amount of money with its currency and two decimals, as the output reads."""
    key = str(path).rsplit(".", 1)[-1]
    if isinstance(value, int | float) and not isinstance(value, bool) and schema_form.is_money(key):
        return schema_form.display_value(schema_form.Spec("number", key), value, currency=currency)
    return as_json(value)


@register.filter
def event_detail(detail: Any) -> str:
    """An audit event's detail as "outcome: approved · changed: total_amount"."""
    if not isinstance(detail, dict):
        return ""
    parts = []
    for key, value in detail.items():
        if value in (None, "", [], {}):
            continue
        # A list of findings reads as their messages.
        entries = [v.get("message", v) if isinstance(v, dict) else v for v in value] if isinstance(value, list) else []
        shown = ", ".join(str(v) for v in entries) if isinstance(value, list) else str(value)
        parts.append(f"{humanize_code(key).lower()}: {shown}")
    return " · ".join(parts)


@register.inclusion_tag("reviews/_undo_bar.html", takes_context=True)
def undo_bar(context: template.Context) -> dict[str, Any]:
    """The bar offering to undo the reviewer's last decision while its window lasts (`undo_offers`)."""
    request = context.get("request")
    return {
        "offer": undo_offers.current(request) if request is not None else None,
        "csrf_token": context.get("csrf_token"),
    }


@register.filter
def summary_text(item: Any) -> str:
    """An item in a few words for a bulk selection ("Acme Supplies Ltd INV-1042 205.00 EUR"): its first found
    summary values, or its type and short id."""
    found = [str(field.get("value", "")) for field in (item.summary or []) if field.get("found")][:3]
    return " ".join(found) or f"{humanize_code(item.output_type)} {str(item.id)[:8]}"
