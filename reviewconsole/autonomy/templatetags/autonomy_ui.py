"""Presentation helpers of the autonomy pages: rates with their intervals, thresholds, durations."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from reviewconsole.autonomy.charts import interval, pct
from reviewconsole.autonomy.versions import version_label, version_param

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """0.934 → "93.4%"; None → "—"."""
    return "—" if value is None else pct(value, int(digits))


@register.simple_tag
def rate(value: float | None, low: float | None, high: float | None, n: float | None = None) -> SafeString:
    """A rate, its 95% interval and its sample size, or a dash when nothing was measured."""
    if value is None:
        return format_html('<span class="rate rate--none muted" title="{}">—</span>', "Nothing measured yet")
    sample = ""
    if n is not None:
        sample = f"n={n:.0f}" if isinstance(n, float) and not n.is_integer() else f"n={int(n)}"
    return format_html(
        '<span class="rate"><span class="rate__value">{}</span> <span class="rate__ci" title="{}">{}\u2013{}</span>'
        "{}</span>",
        pct(value),
        interval(low, high),
        pct(low, 1).removesuffix("%"),
        pct(high),
        format_html(' <span class="rate__n">{}</span>', sample) if sample else "",
    )


@register.filter
def threshold(value: float | None) -> str:
    """The threshold as managers read it: two decimals, or "review all" when there is none."""
    return "review all" if value is None else f"{value:.2f}"


@register.filter
def seconds(value: float | None) -> str:
    """A duration in seconds the way people say it: "45 s", "12 min", "3.5 h", "2.1 d"."""
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.0f} s"
    if value < 3600:
        return f"{value / 60:.0f} min"
    if value < 86400 * 2:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


@register.filter
def number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{int(digits)}f}"


@register.filter
def policy_value(value: Any) -> str:
    """A policy field's value in the change history."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON for a <pre>; the template escapes it."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


@register.filter(name="version_label")
def version_label_filter(value: str) -> str:
    """A flow version as people read it; the decisions made before versions were recorded have none."""
    return version_label(value)


@register.filter(name="version_param")
def version_param_filter(value: str) -> str:
    return version_param(value)
