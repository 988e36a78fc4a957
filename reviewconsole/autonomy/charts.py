"""Server-rendered SVG charts for the autonomy dashboards: no script, no CDN, no inline style.

Every function is pure: it takes the rows a selector returns and gives back an SVG string. Colours
and fonts come from classes styled in static/css/autonomy.css (the CSP forbids style attributes).
Every piece of text is escaped here, output type names included, so the result can be marked safe.
Each chart is an `role="img"` with a <title> and <desc>; each point or column carries a <title>
tooltip with its numbers, and the pages show the same numbers in a table next to the chart.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

WIDTH = 720
# Plot margins: room for the y labels on the left and the x labels and axis title below.
LEFT, RIGHT, TOP, BOTTOM = 58, 18, 24, 46


def esc(value: object) -> str:
    """Text or attribute content, escaped for XML and HTML alike (quotes included)."""
    return html.escape(str(value), quote=True)


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def interval(low: float | None, high: float | None, digits: int = 1) -> str:
    if low is None or high is None:
        return "no interval"
    return f"95% CI {low * 100:.{digits}f}\u2013{high * 100:.{digits}f}%"


def _num(value: float) -> str:
    """A coordinate: two decimals are plenty at this size and keep the markup small."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Frame:
    """The plot area inside the chart and its value ranges; maps values to pixels."""

    height: int
    x_min: float = 0.0
    x_max: float = 1.0
    y_min: float = 0.0
    y_max: float = 1.0
    width: int = WIDTH

    @property
    def left(self) -> float:
        return LEFT

    @property
    def right(self) -> float:
        return self.width - RIGHT

    @property
    def top(self) -> float:
        return TOP

    @property
    def bottom(self) -> float:
        return self.height - BOTTOM

    def x(self, value: float) -> float:
        span = (self.x_max - self.x_min) or 1.0
        return self.left + (value - self.x_min) / span * (self.right - self.left)

    def y(self, value: float) -> float:
        span = (self.y_max - self.y_min) or 1.0
        clamped = min(max(value, self.y_min), self.y_max)
        return self.bottom - (clamped - self.y_min) / span * (self.bottom - self.top)


def _open(kind: str, chart_id: str, title: str, desc: str, *, width: int = WIDTH, height: int) -> list[str]:
    cid = esc(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart--{esc(kind)}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="{cid}-title {cid}-desc" focusable="false">',
        f'<title id="{cid}-title">{esc(title)}</title>',
        f'<desc id="{cid}-desc">{esc(desc)}</desc>',
    ]


def _line(x1: float, y1: float, x2: float, y2: float, cls: str) -> str:
    return f'<line class="{cls}" x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}"/>'


def _text(x: float, y: float, text: str, cls: str, anchor: str = "middle", extra: str = "") -> str:
    return f'<text class="{cls}" x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}"{extra}>{esc(text)}</text>'


def _y_axis(frame: Frame, ticks: Sequence[float], label: str) -> list[str]:
    parts = ['<g class="chart__axis chart__axis--y">']
    for tick in ticks:
        y = frame.y(tick)
        parts.append(_line(frame.left, y, frame.right, y, "chart__grid"))
        parts.append(_text(frame.left - 8, y + 4, pct(tick, 0), "chart__tick", "end"))
    middle = (frame.top + frame.bottom) / 2
    parts.append(
        _text(14, middle, label, "chart__axis-title", extra=f' transform="rotate(-90 14 {_num(middle)})"'),
    )
    parts.append("</g>")
    return parts


def _x_axis(frame: Frame, ticks: Iterable[tuple[float, str]], label: str) -> list[str]:
    parts = [
        '<g class="chart__axis chart__axis--x">',
        _line(frame.left, frame.bottom, frame.right, frame.bottom, "chart__baseline"),
    ]
    for value, text in ticks:
        x = frame.x(value)
        parts.append(_line(x, frame.bottom, x, frame.bottom + 4, "chart__tickmark"))
        parts.append(_text(x, frame.bottom + 17, text, "chart__tick"))
    parts.append(_text((frame.left + frame.right) / 2, frame.height - 6, label, "chart__axis-title"))
    parts.append("</g>")
    return parts


def _target_line(frame: Frame, target: float | None, *, label_left: bool = False) -> list[str]:
    if target is None:
        return []
    y = frame.y(target)
    x, anchor = (frame.left + 6, "start") if label_left else (frame.right - 4, "end")
    return [
        '<g class="chart__target">',
        f"<title>{esc(f'Target accuracy {pct(target)}')}</title>",
        _line(frame.left, y, frame.right, y, "chart__target-line"),
        _text(x, y - 5, f"target {pct(target, 0)}", "chart__label chart__label--target", anchor),
        "</g>",
    ]


def _whisker(x: float, low: float, high: float, cls: str, cap: float = 4) -> list[str]:
    return [
        _line(x, low, x, high, f"chart__whisker {cls}"),
        _line(x - cap, low, x + cap, low, f"chart__whisker {cls}"),
        _line(x - cap, high, x + cap, high, f"chart__whisker {cls}"),
    ]


def _dot(x: float, y: float, cls: str, r: float = 4.5) -> str:
    return f'<circle class="chart__dot {cls}" cx="{_num(x)}" cy="{_num(y)}" r="{_num(r)}"/>'


def _path(points: Sequence[tuple[float, float] | None]) -> str:
    """A polyline path; None breaks the line (a period without data stays a visible gap)."""
    commands = []
    pen_down = False
    for point in points:
        if point is None:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{_num(point[0])} {_num(point[1])}")
        pen_down = True
    return " ".join(commands)


def _band(upper: Sequence[tuple[float, float]], lower: Sequence[tuple[float, float]]) -> str:
    """A closed area between two lines (an interval band)."""
    if not upper:
        return ""
    outline = [*upper, *reversed(lower)]
    return "M" + " L".join(f"{_num(x)} {_num(y)}" for x, y in outline) + " Z"


def _empty(chart: list[str], frame: Frame, message: str) -> str:
    chart.append(_text((frame.left + frame.right) / 2, (frame.top + frame.bottom) / 2, message, "chart__empty"))
    chart.append("</svg>")
    return "\n".join(chart)


# --------------------------------------------------------------------------- calibration


def calibration_chart(
    bands: Sequence[dict[str, Any]],
    *,
    target: float | None = None,
    threshold: float | None = None,
    output_type: str = "",
    chart_id: str = "calibration",
) -> str:
    """Weighted accuracy per confidence band with its exact 95% whiskers, against the diagonal and the target.

    `bands` are `selectors.calibration` rows: each verdict weighs by the outputs it stands for, so a band
    the threshold splits (full review below, audits above) shows the accuracy of its outputs, not of its
    verdicts. A dot sits at the band's mean confidence, so a well-calibrated type lies on the diagonal.
    Faint bars give each band's share of the reviewed outputs (their own scale: the tallest bar is the
    busiest band).
    """
    height = 340
    frame = Frame(height=height)
    reviewed = sum(band["n"] for band in bands)
    desc = (
        f"Accuracy of the outputs of {output_type or 'this type'} per confidence band of 0.1, each verdict "
        f"weighted by the outputs it stands for, with exact 95% intervals, against perfect calibration (the diagonal)"
        + (f" and the {pct(target)} target" if target is not None else "")
        + f"; {reviewed} reviewed outputs."
    )
    chart = _open("calibration", chart_id, f"Calibration of {output_type}".strip(), desc, height=height)
    chart += _y_axis(frame, [0, 0.25, 0.5, 0.75, 1.0], "Accuracy")
    chart += _x_axis(frame, [(i / 10, f"{i / 10:.1f}") for i in range(11)], "Confidence")
    if not reviewed:
        return _empty(chart, frame, "No reviewed outputs yet")
    busiest = max(band["n"] for band in bands) or 1
    volume_height = (frame.bottom - frame.top) * 0.3
    chart.append('<g class="chart__volume">')
    for band in bands:
        if not band["n"]:
            continue
        x0, x1 = frame.x(band["low"]) + 3, frame.x(band["high"]) - 3
        h = max(1.0, volume_height * band["n"] / busiest)
        chart.append(
            f'<rect class="chart__bar" x="{_num(x0)}" y="{_num(frame.bottom - h)}" width="{_num(x1 - x0)}" '
            f'height="{_num(h)}"/>'
        )
    chart.append("</g>")
    chart.append(_line(frame.x(0), frame.y(0), frame.x(1), frame.y(1), "chart__diagonal"))
    chart.append(
        _text(
            frame.x(0.09),
            frame.y(0.135),
            "perfect calibration",
            "chart__label chart__label--diagonal",
            extra=f' transform="rotate(-24.6 {_num(frame.x(0.09))} {_num(frame.y(0.135))})"',
        )
    )
    chart += _target_line(frame, target, label_left=True)
    chart += _threshold_marker(frame, threshold)
    chart.append('<g class="chart__series chart__series--accuracy">')
    for band in bands:
        if not band["n"] or band["accuracy"] is None:
            continue
        x = frame.x(
            band["mean_confidence"] if band["mean_confidence"] is not None else (band["low"] + band["high"]) / 2
        )
        label = (
            f"Confidence {band['low']:.1f}\u2013{band['high']:.1f}: weighted accuracy {pct(band['accuracy'])} "
            f"({interval(band['ci_low'], band['ci_high'])}), {band['correct']} of {band['n']} right, "
            f"standing for {band.get('outputs', band['n']):.0f} outputs; mean confidence {band['mean_confidence']:.2f}"
        )
        chart.append(f'<g class="chart__point" tabindex="0"><title>{esc(label)}</title>')
        x0, x1 = frame.x(band["low"]), frame.x(band["high"])
        chart.append(
            f'<rect class="chart__hit" x="{_num(x0)}" y="{_num(frame.top)}" width="{_num(x1 - x0)}" '
            f'height="{_num(frame.bottom - frame.top)}"/>'
        )
        chart += _whisker(x, frame.y(band["ci_low"]), frame.y(band["ci_high"]), "chart__whisker--accuracy")
        chart.append(_dot(x, frame.y(band["accuracy"]), "chart__dot--accuracy"))
        chart.append("</g>")
    chart.append("</g>")
    chart.append("</svg>")
    return "\n".join(chart)


def _threshold_marker(frame: Frame, threshold: float | None) -> list[str]:
    if threshold is None:
        return []
    x = frame.x(threshold)
    label_x = min(max(x, frame.left + 45), frame.right - 45)
    return [
        '<g class="chart__threshold">',
        f"<title>{esc(f'Current threshold {threshold:.2f}: outputs at or above it skip review')}</title>",
        _line(x, frame.top, x, frame.bottom, "chart__threshold-line"),
        # In the top margin, clear of the target line and the points.
        _text(label_x, frame.top - 6, f"threshold {threshold:.2f}", "chart__label chart__label--threshold"),
        "</g>",
    ]


# --------------------------------------------------------------------------- trend


def _period_label(period: date, kind: str) -> str:
    return f"{period:%b} {period.day}" if kind == "day" else f"wk {period:%b} {period.day}"


def trend_chart(
    rows: Sequence[dict[str, Any]],
    *,
    period: str = "day",
    target: float | None = None,
    output_type: str = "",
    chart_id: str = "trend",
    width: int = 1080,
) -> str:
    """Autonomy rate and reviewed accuracy per day or week, accuracy with its interval as a band.

    `rows` are `selectors.trend` rows. Periods without outputs break the lines. Faint bars give
    each period's volume (their own scale).
    """
    height = 300
    unit = "day" if period == "day" else "week"
    desc = (
        f"Per {unit}: share of outputs of {output_type or 'this type'} auto-processed, and accuracy of the "
        f"reviewed ones with its 95% interval, over {len(rows)} {unit}s."
    )
    chart = _open("trend", chart_id, f"Trend of {output_type} by {unit}".strip(), desc, width=width, height=height)
    count = len(rows)
    frame = Frame(height=height, x_min=-0.5, x_max=max(count - 0.5, 0.5), width=width)
    chart += _y_axis(frame, [0, 0.25, 0.5, 0.75, 1.0], "Share")
    step = max(1, math.ceil(count / (width // 90)))
    ticks = [(i, _period_label(row["period"], period)) for i, row in enumerate(rows) if i % step == 0]
    chart += _x_axis(frame, ticks, "Day" if period == "day" else "Week starting")
    if not count:
        return _empty(chart, frame, "No outputs yet")
    busiest = max(row["total"] for row in rows) or 1
    column = (frame.right - frame.left) / max(count, 1)
    volume_height = (frame.bottom - frame.top) * 0.25
    chart.append('<g class="chart__volume">')
    for i, row in enumerate(rows):
        if not row["total"]:
            continue
        h = max(1.0, volume_height * row["total"] / busiest)
        width = max(1.0, column * 0.7)
        chart.append(
            f'<rect class="chart__bar" x="{_num(frame.x(i) - width / 2)}" y="{_num(frame.bottom - h)}" '
            f'width="{_num(width)}" height="{_num(h)}"/>'
        )
    chart.append("</g>")
    chart += _target_line(frame, target)

    accuracy: list[tuple[float, float] | None] = []
    autonomy: list[tuple[float, float] | None] = []
    # The interval band, one closed area per run of periods with verdicts, so a gap stays a gap.
    runs: list[tuple[list[tuple[float, float]], list[tuple[float, float]]]] = []
    for i, row in enumerate(rows):
        x = frame.x(i)
        if row["accuracy"] is not None:
            if not accuracy or accuracy[-1] is None:
                runs.append(([], []))
            runs[-1][0].append((x, frame.y(row["ci_high"])))
            runs[-1][1].append((x, frame.y(row["ci_low"])))
            accuracy.append((x, frame.y(row["accuracy"])))
        else:
            accuracy.append(None)
        autonomy.append((x, frame.y(row["autonomy_rate"])) if row["autonomy_rate"] is not None else None)
    for upper, lower in runs:
        chart.append(f'<path class="chart__ci-band chart__ci-band--accuracy" d="{_band(upper, lower)}"/>')
    chart.append(f'<path class="chart__line chart__line--accuracy" d="{_path(accuracy)}"/>')
    chart.append(f'<path class="chart__line chart__line--autonomy" d="{_path(autonomy)}"/>')
    chart.append('<g class="chart__points">')
    for i, row in enumerate(rows):
        x = frame.x(i)
        label = (
            f"{_period_label(row['period'], period)} ({row['period']:%Y-%m-%d}): {row['total']} outputs; "
            f"auto-processed {pct(row['autonomy_rate'])} ({interval(row['autonomy_ci_low'], row['autonomy_ci_high'])}, "
            f"{row['auto']} of {row['total']}); accuracy {pct(row['accuracy'])} "
            f"({interval(row['ci_low'], row['ci_high'])}, {row['correct']} of {row['reviewed']} reviewed)"
        )
        chart.append(f'<g class="chart__point"><title>{esc(label)}</title>')
        chart.append(
            f'<rect class="chart__hit" x="{_num(x - column / 2)}" y="{_num(frame.top)}" width="{_num(column)}" '
            f'height="{_num(frame.bottom - frame.top)}"/>'
        )
        if count <= 60:
            if row["accuracy"] is not None:
                chart.append(_dot(x, frame.y(row["accuracy"]), "chart__dot--accuracy", 3))
            if row["autonomy_rate"] is not None:
                chart.append(_dot(x, frame.y(row["autonomy_rate"]), "chart__dot--autonomy", 3))
        chart.append("</g>")
    chart.append("</g>")
    chart.append("</svg>")
    return "\n".join(chart)


# --------------------------------------------------------------------------- recommendation evidence


def recommendation_chart(
    evidence: Sequence[dict[str, Any]],
    *,
    target: float,
    chosen: float | None = None,
    current: float | None = None,
    output_type: str = "",
    chart_id: str = "recommendation",
) -> str:
    """For each candidate threshold, the weighted accuracy of the outputs at or above it, with its interval.

    `evidence` is the recommendation's candidate list. The recommended threshold is the lowest the
    fixed-sequence test passes, from the strictest down; it is marked, as is the current one.
    """
    height = 300
    points = [c for c in evidence if c.get("accuracy") is not None]
    # The axis fits the candidates with enough samples; the few-sample ones at the very top have
    # intervals down to nothing and would squash the rest (they are clamped to the bottom edge).
    sized = [c for c in points if c.get("eligible")] or points
    lows = [c["ci_low"] for c in sized if c.get("ci_low") is not None]
    floor = min([*lows, target]) if lows else 0.0
    y_min = max(0.0, math.floor((floor - 0.02) * 20) / 20)
    frame = Frame(height=height, y_min=y_min)
    desc = (
        f"For each candidate threshold of {output_type or 'this type'}: the accuracy of reviewed outputs at or "
        f"above it, with 95% intervals, against the {pct(target)} target."
        + (f" Recommended: {chosen:.2f}." if chosen is not None else " No threshold is recommended yet.")
    )
    chart = _open("recommendation", chart_id, "Accuracy at or above each threshold", desc, height=height)
    span = 1.0 - y_min
    step = 0.05 if span <= 0.3 else 0.1 if span <= 0.6 else 0.25
    ticks = [y_min + i * step for i in range(round(span / step) + 1)]
    chart += _y_axis(frame, ticks, "Accuracy at or above")
    chart += _x_axis(frame, [(i / 10, f"{i / 10:.1f}") for i in range(11)], "Candidate threshold")
    if not points:
        return _empty(chart, frame, "No reviewed outputs with a confidence yet")
    ordered = sorted(points, key=lambda c: c["threshold"])
    upper = [(frame.x(c["threshold"]), frame.y(c["ci_high"])) for c in ordered]
    lower = [(frame.x(c["threshold"]), frame.y(c["ci_low"])) for c in ordered]
    chart.append(f'<path class="chart__ci-band chart__ci-band--accuracy" d="{_band(upper, lower)}"/>')
    chart.append(
        f'<path class="chart__line chart__line--accuracy" '
        f'd="{_path([(frame.x(c["threshold"]), frame.y(c["accuracy"])) for c in ordered])}"/>'
    )
    chart.append(f'<path class="chart__line chart__line--lower" d="{_path([(x, y) for x, y in lower])}"/>')
    # Labelled on the left, where the curve (rising with the threshold) is usually below it.
    chart += _target_line(frame, target, label_left=True)
    if current is not None:
        chart += _threshold_marker(frame, current)
    # One hover column per candidate (a percent wide); passing candidates get a dot on the lower bound,
    # the line the rule reads.
    column = frame.x(0.01) - frame.x(0)
    chart.append('<g class="chart__points">')
    for candidate in ordered:
        x = frame.x(candidate["threshold"])
        verdict = (
            "passes"
            if candidate["passes"]
            else "fails: the test stops here"
            if candidate.get("tested")
            else "too few samples"
            if not candidate["eligible"]
            else "not tested"
        )
        label = (
            f"Threshold {candidate['threshold']:.2f}: {pct(candidate['accuracy'])} "
            f"({interval(candidate['ci_low'], candidate['ci_high'])}), n={candidate['n']}, "
            f"effective n={candidate['n_eff']:.0f}; {verdict}"
        )
        chart.append(f'<g class="chart__point"><title>{esc(label)}</title>')
        chart.append(
            f'<rect class="chart__hit" x="{_num(x - column / 2)}" y="{_num(frame.top)}" width="{_num(column)}" '
            f'height="{_num(frame.bottom - frame.top)}"/>'
        )
        if candidate["passes"]:
            chart.append(_dot(x, frame.y(candidate["ci_low"]), "chart__dot--pass", 2.5))
        chart.append("</g>")
    chart.append("</g>")
    if chosen is not None:
        pick = next((c for c in ordered if abs(c["threshold"] - chosen) < 1e-9), None)
        if pick is not None:
            x, y = frame.x(chosen), frame.y(pick["ci_low"])
            chart.append('<g class="chart__chosen">')
            chart.append(f"<title>{esc(f'Recommended threshold {chosen:.2f}')}</title>")
            chart.append(_dot(x, y, "chart__dot--chosen", 7))
            anchor = "end" if chosen > 0.6 else "start"
            offset = -12 if anchor == "end" else 12
            chart.append(
                _text(x + offset, y + 18, f"recommended {chosen:.2f}", "chart__label chart__label--chosen", anchor)
            )
            chart.append("</g>")
    chart.append("</svg>")
    return "\n".join(chart)


# --------------------------------------------------------------------------- overview


def types_chart(rows: Sequence[dict[str, Any]], *, chart_id: str = "types") -> str:
    """Per output type, each with its 95% interval: accuracy of reviewed outputs, estimated accuracy of
    auto-processed ones (from audits), and the share auto-processed; a tick marks the type's target.

    `rows` are `selectors.overview` rows. Long type names are cut short; the tooltip has them whole.
    """
    row_height = 44
    label_width = 190
    height = TOP + BOTTOM + row_height * max(len(rows), 1)
    frame = Frame(height=height)
    left = label_width
    desc = (
        "Per output type: accuracy of reviewed outputs, estimated accuracy of auto-processed outputs (audits) "
        "and share auto-processed, each with its 95% interval, and the target accuracy."
    )
    chart = _open("types", chart_id, "Accuracy and autonomy by output type", desc, height=height)

    def x(value: float) -> float:
        return left + value * (frame.right - left)

    chart.append('<g class="chart__axis chart__axis--x">')
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        chart.append(_line(x(tick), frame.top, x(tick), frame.bottom, "chart__grid"))
        chart.append(_text(x(tick), frame.bottom + 17, pct(tick, 0), "chart__tick"))
    chart.append(_text((left + frame.right) / 2, height - 6, "Share of outputs", "chart__axis-title"))
    chart.append("</g>")
    if not rows:
        middle = (frame.top + frame.bottom) / 2
        chart.append(_text((left + frame.right) / 2, middle, "No output types yet", "chart__empty"))
        chart.append("</svg>")
        return "\n".join(chart)
    series = [
        ("accuracy", "ci_low", "ci_high", "chart__whisker--accuracy", "chart__dot--accuracy", -11),
        (
            "auto_accuracy_estimate",
            "auto_accuracy_ci_low",
            "auto_accuracy_ci_high",
            "chart__whisker--auto-accuracy",
            "chart__dot--auto-accuracy",
            0,
        ),
        (
            "autonomy_rate",
            "autonomy_ci_low",
            "autonomy_ci_high",
            "chart__whisker--autonomy",
            "chart__dot--autonomy",
            11,
        ),
    ]
    for i, row in enumerate(rows):
        middle = frame.top + row_height * (i + 0.5)
        name = str(row["output_type"])
        short = name if len(name) <= 24 else name[:23] + "\u2026"
        chart.append('<g class="chart__row">')
        chart.append(f"<title>{esc(_type_tooltip(row))}</title>")
        chart.append(
            f'<rect class="chart__hit" x="0" y="{_num(middle - row_height / 2)}" width="{_num(frame.right)}" '
            f'height="{row_height}"/>'
        )
        if i:
            chart.append(_line(left, middle - row_height / 2, frame.right, middle - row_height / 2, "chart__grid"))
        chart.append(_text(left - 10, middle + 4, short, "chart__row-label", "end"))
        target = row.get("target_accuracy")
        if target is not None:
            chart.append(_line(x(target), middle - 17, x(target), middle + 5, "chart__target-tick"))
        for value, low, high, whisker, dot, offset in series:
            if row.get(value) is None:
                continue
            y = middle + offset
            chart += _whisker_h(x(row[low]), x(row[high]), y, whisker)
            chart.append(_dot(x(row[value]), y, dot, 4))
        chart.append("</g>")
    chart.append("</svg>")
    return "\n".join(chart)


def _whisker_h(x1: float, x2: float, y: float, cls: str, cap: float = 3) -> list[str]:
    return [
        _line(x1, y, x2, y, f"chart__whisker {cls}"),
        _line(x1, y - cap, x1, y + cap, f"chart__whisker {cls}"),
        _line(x2, y - cap, x2, y + cap, f"chart__whisker {cls}"),
    ]


def _type_tooltip(row: dict[str, Any]) -> str:
    return (
        f"{row['output_type']}: accuracy {pct(row['accuracy'])} ({interval(row['ci_low'], row['ci_high'])}, "
        f"n={row['reviewed']}); auto-processed outputs right {pct(row.get('auto_accuracy_estimate'))} "
        f"({interval(row.get('auto_accuracy_ci_low'), row.get('auto_accuracy_ci_high'))}, "
        f"effective n={row.get('auto_accuracy_n_eff') or 0:.0f}); auto-processed {pct(row['autonomy_rate'])} "
        f"({interval(row['autonomy_ci_low'], row['autonomy_ci_high'])}, n={row['total']}); "
        f"target {pct(row.get('target_accuracy'))}"
    )


def sparkline(rows: Sequence[dict[str, Any]], *, output_type: str = "", chart_id: str = "spark") -> str:
    """A small line of the daily autonomy rate (and reviewed accuracy) for a table cell.

    `rows` are trend rows ({period, total, autonomy_rate, accuracy, …}), oldest first.
    """
    width, height, pad = 132, 30, 3
    if rows:
        first, last = rows[0], rows[-1]
        summary = (
            f"{len(rows)} days from {first['period']:%Y-%m-%d}: auto-processed {pct(first['autonomy_rate'])} → "
            f"{pct(last['autonomy_rate'])}, accuracy {pct(first['accuracy'])} → {pct(last['accuracy'])}"
        )
    else:
        summary = "No outputs in this period"
    chart = _open("spark", chart_id, f"Trend of {output_type}".strip(), summary, width=width, height=height)
    if not rows:
        chart.append(_line(pad, height - pad, width - pad, height - pad, "chart__spark-empty"))
        chart.append("</svg>")
        return "\n".join(chart)
    count = len(rows)

    def x(i: int) -> float:
        return pad + (i / (count - 1) if count > 1 else 0.5) * (width - 2 * pad)

    def y(value: float) -> float:
        return height - pad - value * (height - 2 * pad)

    accuracy = [(x(i), y(r["accuracy"])) if r["accuracy"] is not None else None for i, r in enumerate(rows)]
    autonomy = [(x(i), y(r["autonomy_rate"])) if r["autonomy_rate"] is not None else None for i, r in enumerate(rows)]
    chart.append(_line(pad, y(0), width - pad, y(0), "chart__spark-base"))
    chart.append(f'<path class="chart__spark chart__spark--accuracy" d="{_path(accuracy)}"/>')
    chart.append(f'<path class="chart__spark chart__spark--autonomy" d="{_path(autonomy)}"/>')
    last_point = next((p for p in reversed(autonomy) if p is not None), None)
    if last_point is not None:
        chart.append(_dot(*last_point, "chart__dot--autonomy", 2.5))
    chart.append("</svg>")
    return "\n".join(chart)
