"""Small presentation helpers shared by the console's pages."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

_CLASS_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def _token(value: object) -> str:
    """A status reduced to a class-name-safe token, so a stored value cannot add classes."""
    return _CLASS_UNSAFE.sub("-", str(value).strip().lower()).strip("-") or "unknown"


@register.simple_tag
def badge(status: object, label: object = "") -> SafeString:
    """A coloured status pill; the colour comes from `badge--<status>` in app.css."""
    return format_html('<span class="badge badge--{}">{}</span>', _token(status), label or status)


@register.simple_tag
def timestamp(value: datetime | None) -> SafeString:
    """A short local time with the full timestamp as tooltip, or a dash."""
    if value is None:
        return format_html('<span class="muted">{}</span>', "—")
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        f"{local:%b} {local.day}, {local:%H:%M:%S}",
    )


@register.filter
def duration_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    seconds = value / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.simple_tag
def elapsed(start: datetime | None, end: datetime | None) -> str:
    """Wall time between two timestamps, or a dash while either is missing."""
    if start is None or end is None:
        return "—"
    return duration_ms((end - start).total_seconds() * 1000)


@register.filter
def short_id(value: Any) -> str:
    return str(value)[:8]


@register.simple_tag(takes_context=True)
def nav_link(context: template.Context, url_name: str, label: str, *sections: str) -> SafeString:
    """A top-bar link, marked current for its own page and every page below it, except those below `sections`
    (url names of other top-bar links under its address, which are current there instead)."""
    url = reverse(url_name)
    request = context.get("request")
    path = request.path if request is not None else None
    current = path is not None and path.startswith(url) and not any(path.startswith(reverse(s)) for s in sections)
    if current:
        return format_html('<a class="nav__link" href="{}" aria-current="page">{}</a>', url, label)
    return format_html('<a class="nav__link" href="{}">{}</a>', url, label)
