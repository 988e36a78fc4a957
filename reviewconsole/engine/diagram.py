"""Server-side SVG diagram of a CrewAI flow.

The run and flow pages show a flow's methods and how they trigger each other. CrewAI's own
visualiser renders HTML with JavaScript from a CDN, which our strict CSP (no scripts, no
inline styles, ``style-src 'self'``) would block, so we draw the graph here as plain SVG from
``crewai.flow.visualization.build_flow_structure(FlowClass)``.

The drawing is a small Sugiyama-style layered layout, top to bottom:

1. a DFS from the start methods finds back edges (loops), which are set aside so the rest is
   a DAG;
2. every method is ranked by its longest path from a source, so triggers sit above listeners;
3. edges that skip ranks get invisible "dummy" points, so they bend around boxes instead of
   crossing them;
4. the order inside each rank is improved with barycenter sweeps (fewer crossings), and
   x positions are pulled towards neighbours with an isotonic least-squares pass, which keeps
   long edges straight while boxes never overlap.

All looks live in ``static/css/diagram.css`` and are selected through classes
(``node--start``, ``node--router``, ``status--finished``, ``edge--back`` ...), so the run page
can colour nodes by their latest step status. The template marks the result safe, so every
piece of text that reaches the SVG (method and class names, router events, statuses) goes
through :func:`_esc` even though it normally comes from Python identifiers.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # CrewAI is heavy to import; the web path only needs the type.
    from crewai.flow.visualization.types import FlowStructure

__all__ = ["STEP_STATUSES", "render_flow_svg"]

#: Step statuses the stylesheet has colours for (mirrors ``engine.models.StepStatus``).
STEP_STATUSES = ("started", "finished", "failed", "paused", "replayed", "interrupted")

# Geometry, in SVG user units (1 unit = 1 CSS px when the diagram is not scaled).
NODE_H = 48.0
RANK_GAP = 68.0  # vertical room between ranks: curves and router-event labels live here
NODE_GAP = 40.0  # horizontal gap between two boxes of one rank
DUMMY_W = 14.0  # width reserved for an edge passing through a rank
DUMMY_GAP = 14.0
ROUTER_INSET = 14.0  # how far a router's pointed sides stick out
PAD_X = 16.0
MIN_NODE_W = 120.0
MARGIN = 24.0
MIN_VIEW_W = 720.0  # small flows would otherwise be scaled up to huge boxes at width 100%
# Text metrics are estimated, not measured: names use a monospace font at 13px (0.6em per
# glyph), captions and labels a monospace font at 11px, so widths are predictable.
NAME_CHAR_W = 7.9
SMALL_CHAR_W = 6.7
NAME_MAX_CHARS = 34
LABEL_MAX_CHARS = 36
LABEL_H = 17.0
BACK_BULGE = 38.0
MIDDOT = "\u00b7"
ELLIPSIS = "\u2026"

# Characters XML 1.0 forbids even when escaped; a name containing one would break parsing.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CLASS_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def _esc(value: object) -> str:
    """Escape untrusted text for both SVG text content and attribute values."""
    return html.escape(_XML_INVALID.sub("", str(value)), quote=True)


def _css_token(value: str) -> str:
    """Reduce a status to a class-name-safe token so it cannot inject extra classes."""
    return _CLASS_UNSAFE.sub("-", value.strip().lower()).strip("-") or "unknown"


def _shorten(text: str, limit: int) -> str:
    """Cut long text so boxes stay readable; the full text stays in the element's ``<title>``."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _num(value: float) -> str:
    """Format a coordinate compactly (one decimal, no trailing ``.0``)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


@dataclass
class _Item:
    """A box (a flow method) or a dummy point of a long edge, placed in one rank."""

    index: int
    rank: int
    width: float
    name: str | None = None  # None for dummies
    x: float = 0.0
    up: list[tuple[int, float]] = field(default_factory=list)  # (item index, weight) in rank - 1
    down: list[tuple[int, float]] = field(default_factory=list)  # (item index, weight) in rank + 1

    @property
    def is_dummy(self) -> bool:
        return self.name is None


@dataclass
class _Edge:
    """One drawn connection; parallel structure edges between the same pair are merged."""

    source: str
    target: str
    events: list[str] = field(default_factory=list)
    is_router: bool = False
    is_and: bool = False
    is_back: bool = False
    chain: list[int] = field(default_factory=list)  # item indices in increasing rank order


@dataclass
class _Node:
    """Per-method facts the renderer needs."""

    name: str
    is_start: bool
    is_router: bool
    is_and: bool
    status: str | None
    caption: str
    width: float
    item: int = -1


# --------------------------------------------------------------------------- graph analysis


def _collect_edges(structure: Mapping[str, Any], names: Sequence[str]) -> list[_Edge]:
    """Merge the structure's edges per (source, target), dropping ones to unknown methods."""
    known = set(names)
    merged: dict[tuple[str, str], _Edge] = {}
    for raw in structure.get("edges") or []:
        source, target = str(raw.get("source", "")), str(raw.get("target", ""))
        if source not in known or target not in known:
            continue
        edge = merged.setdefault((source, target), _Edge(source, target))
        event = raw.get("router_event")
        if raw.get("is_router_event"):
            edge.is_router = True
            if event is not None and str(event) not in edge.events:
                edge.events.append(str(event))
        if raw.get("condition_type") == "AND":
            edge.is_and = True
    return list(merged.values())


def _find_back_edges(names: Sequence[str], starts: Sequence[str], edges: list[_Edge]) -> list[str]:
    """Mark edges closing a cycle (DFS from the start methods); return names in discovery order.

    Searching from the start methods first means a loop is broken where it returns to an
    earlier step (``revise -> review``), which is how people read a flow.
    """
    successors: dict[str, list[_Edge]] = {name: [] for name in names}
    for edge in edges:
        successors[edge.source].append(edge)
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    discovered: list[str] = []
    for root in [*starts, *names]:
        if root in state or root not in successors:
            continue
        state[root] = 1
        discovered.append(root)
        stack: list[tuple[str, Iterator[_Edge]]] = [(root, iter(successors[root]))]
        while stack:
            node, pending = stack[-1]
            edge = next(pending, None)
            if edge is None:
                state[node] = 2
                stack.pop()
                continue
            seen = state.get(edge.target)
            if seen == 1:
                edge.is_back = True
            elif seen is None:
                state[edge.target] = 1
                discovered.append(edge.target)
                stack.append((edge.target, iter(successors[edge.target])))
    return discovered


def _rank_nodes(names: Sequence[str], edges: list[_Edge]) -> dict[str, int]:
    """Longest-path rank over the forward (non-back, non-self) edges."""
    incoming = {name: 0 for name in names}
    successors: dict[str, list[str]] = {name: [] for name in names}
    for edge in edges:
        if edge.is_back or edge.source == edge.target:
            continue
        successors[edge.source].append(edge.target)
        incoming[edge.target] += 1
    rank = dict.fromkeys(names, 0)
    queue = [name for name in names if incoming[name] == 0]
    while queue:
        node = queue.pop(0)
        for target in successors[node]:
            rank[target] = max(rank[target], rank[node] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                queue.append(target)
    return rank


# --------------------------------------------------------------------------- layout


def _edge_weight(a: _Item, b: _Item) -> float:
    """Pull long edges straight harder than short ones (the classic Sugiyama priority)."""
    if a.is_dummy and b.is_dummy:
        return 8.0
    if a.is_dummy or b.is_dummy:
        return 2.0
    return 1.0


def _build_items(nodes: dict[str, _Node], edges: list[_Edge], rank: dict[str, int]) -> list[_Item]:
    """Create boxes and dummy points and link neighbouring ranks; back edges are reversed."""
    items: list[_Item] = []
    for node in nodes.values():
        node.item = len(items)
        items.append(_Item(index=len(items), rank=rank[node.name], width=node.width, name=node.name))
    for edge in edges:
        if edge.source == edge.target:
            continue
        top, bottom = (edge.target, edge.source) if edge.is_back else (edge.source, edge.target)
        chain = [nodes[top].item]
        for r in range(rank[top] + 1, rank[bottom]):
            chain.append(len(items))
            items.append(_Item(index=len(items), rank=r, width=DUMMY_W))
        chain.append(nodes[bottom].item)
        for upper, lower in itertools.pairwise(chain):
            weight = _edge_weight(items[upper], items[lower])
            items[upper].down.append((lower, weight))
            items[lower].up.append((upper, weight))
        edge.chain = chain
    return items


def _crossings(layers: list[list[int]], items: list[_Item]) -> int:
    """Count edge crossings between consecutive ranks (quadratic, fine for <= ~60 items)."""
    total = 0
    for upper in layers[:-1]:
        pos_upper = {index: pos for pos, index in enumerate(upper)}
        pairs = []
        for index in upper:
            for lower, _ in items[index].down:
                pairs.append((pos_upper[index], lower))
        if not pairs:
            continue
        lower_rank = items[pairs[0][1]].rank
        pos_lower = {index: pos for pos, index in enumerate(layers[lower_rank])}
        spots = [(a, pos_lower[b]) for a, b in pairs]
        for i, (a1, b1) in enumerate(spots):
            for a2, b2 in spots[i + 1 :]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _order_layers(items: list[_Item], discovery: dict[int, int], rank_count: int) -> list[list[int]]:
    """Order each rank with barycenter sweeps, keeping the ordering with fewest crossings."""
    layers: list[list[int]] = [[] for _ in range(rank_count)]
    for item in items:
        layers[item.rank].append(item.index)
    # Start from discovery order; dummies follow the box their edge leaves from.
    for layer in layers:
        layer.sort(key=lambda i: discovery.get(i, discovery.get(items[i].up[0][0], 0) if items[i].up else 0))

    def sweep(order: list[list[int]], downward: bool) -> None:
        ranks = range(1, rank_count) if downward else range(rank_count - 2, -1, -1)
        for r in ranks:
            ref = order[r - 1] if downward else order[r + 1]
            pos = {index: p for p, index in enumerate(ref)}
            current = {index: p for p, index in enumerate(order[r])}

            def key(index: int, pos: dict[int, int] = pos, current: dict[int, int] = current) -> tuple[float, int]:
                links = items[index].up if downward else items[index].down
                if not links:
                    return (float(current[index]), current[index])
                return (sum(pos[n] for n, _ in links) / len(links), current[index])

            order[r].sort(key=key)

    best = [list(layer) for layer in layers]
    best_score = _crossings(best, items)
    for iteration in range(12):
        sweep(layers, downward=iteration % 2 == 0)
        score = _crossings(layers, items)
        if score < best_score:
            best, best_score = [list(layer) for layer in layers], score
    return best


def _isotonic_pack(desired: list[float], seps: list[float]) -> list[float]:
    """Positions closest (least squares) to ``desired`` with ``x[i] - x[i-1] >= seps[i]``.

    Shifting by the cumulative separations turns this into isotonic regression, solved
    exactly by pool-adjacent-violators; boxes thus move towards their neighbours as a group
    instead of pushing each other off one side.
    """
    offsets: list[float] = []
    total = 0.0
    for sep in seps:
        total += sep
        offsets.append(total)
    blocks: list[list[float]] = []  # [mean, count]
    for value, offset in zip(desired, offsets, strict=True):
        blocks.append([value - offset, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean2, count2 = blocks.pop()
            mean1, count1 = blocks[-1]
            blocks[-1] = [(mean1 * count1 + mean2 * count2) / (count1 + count2), count1 + count2]
    fitted: list[float] = []
    for mean, count in blocks:
        fitted.extend([mean] * int(count))
    return [value + offset for value, offset in zip(fitted, offsets, strict=True)]


def _separation(a: _Item, b: _Item) -> float:
    """Minimum distance between the centres of two neighbours in a rank."""
    return (a.width + b.width) / 2 + (DUMMY_GAP if a.is_dummy or b.is_dummy else NODE_GAP)


def _assign_x(layers: list[list[int]], items: list[_Item], chains: list[list[int]]) -> None:
    """Give every item an x so linked items line up while a rank's items never overlap."""

    def seps(layer: list[int]) -> list[float]:
        return [0.0] + [_separation(items[a], items[b]) for a, b in itertools.pairwise(layer)]

    def place(layer: list[int], links_of: str) -> None:
        desired = []
        for index in layer:
            item = items[index]
            links = item.up if links_of == "up" else item.down if links_of == "down" else item.up + item.down
            weight = sum(w for _, w in links)
            desired.append(sum(items[n].x * w for n, w in links) / weight if weight else item.x)
        for index, x in zip(layer, _isotonic_pack(desired, seps(layer)), strict=True):
            items[index].x = x

    for layer in layers:  # centre every rank on x = 0
        for index, x in zip(layer, _isotonic_pack([0.0] * len(layer), seps(layer)), strict=True):
            items[index].x = x
    for _ in range(8):
        for layer in layers[1:]:
            place(layer, "up")
        for layer in reversed(layers[:-1]):
            place(layer, "down")
    for layer in layers:
        place(layer, "both")
    _straighten(layers, items, chains)


def _straighten(layers: list[list[int]], items: list[_Item], chains: list[list[int]]) -> None:
    """Line up the dummy points of each long edge where the ranks leave room.

    Averaging leaves them a few units apart, which draws as a wobbly line down the page.
    """
    position = {index: (rank, slot) for rank, layer in enumerate(layers) for slot, index in enumerate(layer)}

    def fits(index: int, x: float) -> bool:
        rank, slot = position[index]
        layer, item = layers[rank], items[index]
        if slot > 0 and x - items[layer[slot - 1]].x < _separation(items[layer[slot - 1]], item) - 0.01:
            return False
        return not (
            slot + 1 < len(layer) and items[layer[slot + 1]].x - x < _separation(item, items[layer[slot + 1]]) - 0.01
        )

    for chain in chains:
        dummies = [index for index in chain if items[index].is_dummy]
        if len(dummies) < 2:
            continue
        current = [items[index].x for index in dummies]
        for candidate in sorted(set(current), key=lambda c: sum(abs(c - x) for x in current)):
            if all(fits(index, candidate) for index in dummies):
                for index in dummies:
                    items[index].x = candidate
                break


# --------------------------------------------------------------------------- drawing


@dataclass
class _Canvas:
    """Collects SVG fragments by layer and tracks the bounding box of everything drawn."""

    edges: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    min_x: float = float("inf")
    min_y: float = float("inf")
    max_x: float = float("-inf")
    max_y: float = float("-inf")

    def include(self, x: float, y: float) -> None:
        self.min_x, self.max_x = min(self.min_x, x), max(self.max_x, x)
        self.min_y, self.max_y = min(self.min_y, y), max(self.max_y, y)


Point = tuple[float, float]
Segment = tuple[Point, Point, Point, Point]  # cubic Bezier; straight lines use collinear controls


def _bezier(seg: Segment, t: float) -> Point:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = seg
    u = 1 - t
    return (
        u**3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t**3 * x3,
        u**3 * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t**3 * y3,
    )


def _vertical(a: Point, b: Point) -> Segment:
    """S-curve between two points leaving and arriving vertically."""
    mid = (b[1] - a[1]) / 2
    return (a, (a[0], a[1] + mid), (b[0], b[1] - mid), b)


def _line(a: Point, b: Point) -> Segment:
    return (a, a, b, b)


def _path_data(segments: list[Segment]) -> str:
    parts = [f"M{_num(segments[0][0][0])},{_num(segments[0][0][1])}"]
    for _, c1, c2, end in segments:
        if c1 == _ and c2 == end:
            parts.append(f"L{_num(end[0])},{_num(end[1])}")
        else:
            parts.append(f"C{_num(c1[0])},{_num(c1[1])} {_num(c2[0])},{_num(c2[1])} {_num(end[0])},{_num(end[1])}")
    return " ".join(parts)


def _rank_top(rank: int) -> float:
    return rank * (NODE_H + RANK_GAP)


def _spread(center: float, width: float, count: int, slot: int) -> float:
    """x of the ``slot``-th of ``count`` edge ports, ~26 units apart, within 80% of a box side."""
    if count <= 1:
        return center
    span = min(width * 0.8, (count - 1) * 26.0)
    return center - span / 2 + span * slot / (count - 1)


def _reverse(segments: list[Segment]) -> list[Segment]:
    return [(d, c, b, a) for a, b, c, d in reversed(segments)]


def _side_loop(source: _Item, target: _Item) -> Segment:
    """A loop between neighbouring ranks: out of one box's side, back into the other's.

    The bulge goes out on the side the target leans to; with ``NODE_GAP`` larger than the
    bulge's reach (3/4 of ``BACK_BULGE``), it never touches a neighbouring box.
    """
    side = 1 if target.x >= source.x else -1
    start = (source.x + side * source.width / 2, _rank_top(source.rank) + NODE_H / 2)
    end = (target.x + side * target.width / 2, _rank_top(target.rank) + NODE_H / 2)
    bulge = (max if side > 0 else min)(start[0], end[0]) + side * BACK_BULGE
    return (start, (bulge, start[1]), (bulge, end[1]), end)


def _route_edges(edges: list[_Edge], items: list[_Item], nodes: dict[str, _Node]) -> dict[int, list[Segment]]:
    """Turn every edge's chain into Bezier segments, spreading ports along box sides.

    Edges run from the bottom of the upper box to the top of the lower one through their dummy
    points. Loops spanning several ranks use the same route drawn upwards, because routing them
    around the outside would cross other boxes; loops between neighbouring ranks, and a method
    re-triggering itself, curve out of the boxes' sides so they do not lie on the forward edge.
    """
    out_ports: dict[int, list[tuple[float, int]]] = {}
    in_ports: dict[int, list[tuple[float, int]]] = {}
    for number, edge in enumerate(edges):
        if len(edge.chain) < 2 or (edge.is_back and len(edge.chain) == 2):
            continue
        first, second, before_last, last = edge.chain[0], edge.chain[1], edge.chain[-2], edge.chain[-1]
        out_ports.setdefault(first, []).append((items[second].x, number))
        in_ports.setdefault(last, []).append((items[before_last].x, number))
    port_x: dict[tuple[int, int], float] = {}
    for ports, side in ((out_ports, 0), (in_ports, 1)):
        for index, entries in ports.items():
            entries.sort()
            for slot, (_, number) in enumerate(entries):
                port_x[(number, side)] = _spread(items[index].x, items[index].width, len(entries), slot)

    routes: dict[int, list[Segment]] = {}
    for number, edge in enumerate(edges):
        if edge.source == edge.target:
            item = items[nodes[edge.source].item]
            right, mid = item.x + item.width / 2, _rank_top(item.rank) + NODE_H / 2
            routes[number] = [
                ((right, mid - 10), (right + BACK_BULGE, mid - 30), (right + BACK_BULGE, mid + 30), (right, mid + 10))
            ]
            continue
        chain = [items[i] for i in edge.chain]
        if edge.is_back and len(chain) == 2:
            routes[number] = [_side_loop(chain[1], chain[0])]
            continue
        segments: list[Segment] = []
        point = (port_x[(number, 0)], _rank_top(chain[0].rank) + NODE_H)
        for dummy in chain[1:-1]:
            top = (dummy.x, _rank_top(dummy.rank))
            segments.append(_vertical(point, top))
            point = (dummy.x, top[1] + NODE_H)
            segments.append(_line(top, point))
        segments.append(_vertical(point, (port_x[(number, 1)], _rank_top(chain[-1].rank))))
        routes[number] = _reverse(segments) if edge.is_back else segments
    return routes


Box = tuple[float, float, float, float]  # x, y, width, height


def _overlap_count(box: Box, others: Iterable[Box]) -> int:
    x, y, w, h = box
    return sum(1 for ox, oy, ow, oh in others if x < ox + ow and ox < x + w and y < oy + oh and oy < y + h)


def _sample(segments: list[Segment], steps: int = 12) -> list[Point]:
    """Points along a route, used to keep labels off other edges' lines."""
    return [_bezier(segment, i / steps) for segment in segments for i in range(steps + 1)]


def _place_label(segments: list[Segment], width: float, taken: list[Box], foreign_points: list[Point]) -> Box:
    """Put a label on the edge's first curve, avoiding boxes, other labels and other lines.

    Candidates nearer the target come first: there a router's fanned-out edges are furthest
    apart. Covering a box or label costs far more than covering a bit of another edge.
    """
    first = segments[0]
    scored: list[tuple[int, int, Box]] = []
    for preference, t in enumerate((0.68, 0.5, 0.82, 0.35, 0.2)):
        cx, cy = _bezier(first, t)
        box = (cx - width / 2, cy - LABEL_H / 2, width, LABEL_H)
        x, y, w, h = box
        crossed = sum(1 for px, py in foreign_points if x - 2 <= px <= x + w + 2 and y - 2 <= py <= y + h + 2)
        scored.append((100 * _overlap_count(box, taken) + crossed, preference, box))
    return min(scored)[2]


def _draw_node(canvas: _Canvas, node: _Node, item: _Item) -> None:
    """One method: shape, name and a caption saying what kind of step it is and its status."""
    x, top, w = item.x, _rank_top(item.rank), item.width
    left, right, bottom, mid = x - w / 2, x + w / 2, top + NODE_H, top + NODE_H / 2
    classes = ["node", "node--start" if node.is_start else "", "node--router" if node.is_router else ""]
    if not node.is_start and not node.is_router:
        classes.append("node--listener")
    if node.is_and:
        classes.append("node--and")
    if node.status is not None:
        classes.append(f"status--{_css_token(node.status)}")
    class_attr = _esc(" ".join(c for c in classes if c))
    tooltip = node.name + f" ({node.caption})"
    parts = [f'<g class="{class_attr}" data-method="{_esc(node.name)}">', f"<title>{_esc(tooltip)}</title>"]
    if node.is_router:

        def hexagon(grow: float) -> str:
            inset = ROUTER_INSET + grow / 2
            points = [
                (left - grow, mid),
                (left - grow + inset, top - grow),
                (right + grow - inset, top - grow),
                (right + grow, mid),
                (right + grow - inset, bottom + grow),
                (left - grow + inset, bottom + grow),
            ]
            return " ".join(f"{_num(px)},{_num(py)}" for px, py in points)

        if node.is_start:
            parts.append(f'<polygon class="node__ring" points="{hexagon(4)}" fill="none" stroke="#2f6fdb"/>')
        parts.append(f'<polygon class="node__shape" points="{hexagon(0)}" fill="#ffffff" stroke="#5b6472"/>')
    else:
        if node.is_start:
            parts.append(
                f'<rect class="node__ring" x="{_num(left - 4)}" y="{_num(top - 4)}" width="{_num(w + 8)}" '
                f'height="{_num(NODE_H + 8)}" rx="14" ry="14" fill="none" stroke="#2f6fdb"/>'
            )
        parts.append(
            f'<rect class="node__shape" x="{_num(left)}" y="{_num(top)}" width="{_num(w)}" '
            f'height="{_num(NODE_H)}" rx="10" ry="10" fill="#ffffff" stroke="#5b6472"/>'
        )
    parts.append(
        f'<text class="node__name" x="{_num(x)}" y="{_num(top + 20)}" text-anchor="middle" '
        f'font-size="13">{_esc(_shorten(node.name, NAME_MAX_CHARS))}</text>'
    )
    parts.append(
        f'<text class="node__caption" x="{_num(x)}" y="{_num(top + 36)}" text-anchor="middle" '
        f'font-size="11">{_esc(node.caption)}</text>'
    )
    parts.append("</g>")
    canvas.nodes.append("".join(parts))
    grow = 5.0 if node.is_start else 0.0
    canvas.include(left - grow, top - grow)
    canvas.include(right + grow, bottom + grow)


def _draw_edge(
    canvas: _Canvas,
    edge: _Edge,
    segments: list[Segment],
    prefix: str,
    taken: list[Box],
    foreign_points: list[Point],
) -> None:
    """One connection, its arrowhead and, for router events, a label naming the event."""
    kind = (
        "back"
        if edge.is_back or edge.source == edge.target
        else "router"
        if edge.is_router
        else "and"
        if edge.is_and
        else "plain"
    )
    classes = ["edge", f"edge--{kind}"]
    if edge.is_router and kind != "router":
        classes.append("edge--router")
    if edge.is_and and kind != "and":
        classes.append("edge--and")
    label = ", ".join(edge.events)
    tooltip = f"{edge.source} \u2192 {edge.target}"
    if label:
        tooltip += f" when {edge.source} returns {label}"
    if edge.is_and:
        tooltip += " (waits for all triggers)"
    if kind == "back":
        tooltip += " (loops back)"
    parts = [
        f'<g class="{_esc(" ".join(classes))}">',
        f"<title>{_esc(tooltip)}</title>",
        f'<path class="edge__line" d="{_path_data(segments)}" fill="none" stroke="#7b8794" '
        f'marker-end="url(#{prefix}-arrow-{kind})"/>',
        "</g>",
    ]
    canvas.edges.append("".join(parts))
    for segment in segments:
        for px, py in segment:
            canvas.include(px, py)
    if not label:
        return
    text = _shorten(label, LABEL_MAX_CHARS)
    width = len(text) * SMALL_CHAR_W + 12
    box = _place_label(segments, width, taken, foreign_points)
    taken.append(box)
    bx, by, bw, bh = box
    canvas.labels.append(
        f'<g class="edge-label edge-label--{kind}"><title>{_esc(tooltip)}</title>'
        f'<rect class="edge-label__bg" x="{_num(bx)}" y="{_num(by)}" width="{_num(bw)}" height="{_num(bh)}" '
        f'rx="4" ry="4" fill="#ffffff"/>'
        f'<text class="edge-label__text" x="{_num(bx + bw / 2)}" y="{_num(by + bh / 2 + 4)}" '
        f'text-anchor="middle" font-size="11">{_esc(text)}</text></g>'
    )
    canvas.include(bx, by)
    canvas.include(bx + bw, by + bh)


def _markers(prefix: str) -> str:
    """Arrowheads, one per edge kind so each can take its edge's colour from the stylesheet."""
    return "".join(
        f'<marker id="{prefix}-arrow-{kind}" class="arrow arrow--{kind}" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="#7b8794"/></marker>'
        for kind in ("plain", "router", "and", "back")
    )


def _caption(is_start: bool, is_router: bool, is_and: bool, status: str | None) -> str:
    kinds = [k for k, on in (("start", is_start), ("router", is_router)) if on] or ["listener"]
    if is_and:
        kinds.append("and-join")
    if status is not None:
        kinds.append(status)
    return f" {MIDDOT} ".join(kinds)


def render_flow_svg(structure: FlowStructure, *, step_status: dict[str, str] | None = None) -> str:
    """Return a self-contained ``<svg>`` drawing of a flow, safe to include in a page.

    ``structure`` is ``build_flow_structure(FlowClass)``; ``step_status`` maps method names to
    their latest step status (``started``, ``finished``, ``failed``, ``paused``, ``replayed``,
    ``interrupted``). With ``step_status`` given, nodes without an entry get ``status--not-run``
    so the run page can dim steps that have not happened yet.
    """
    raw_nodes: Mapping[str, Any] = structure.get("nodes") or {}
    names = [str(name) for name in raw_nodes]
    starts = [str(name) for name in structure.get("start_methods") or [] if str(name) in raw_nodes]
    routers = {str(name) for name in structure.get("router_methods") or []}
    class_names = {str(meta.get("class_name")) for meta in raw_nodes.values() if meta and meta.get("class_name")}
    flow_name = ", ".join(sorted(class_names)) or "flow"
    fingerprint = repr(
        (names, [(e.get("source"), e.get("target"), e.get("router_event")) for e in structure.get("edges") or []])
    )
    prefix = "fd-" + hashlib.sha1(fingerprint.encode(), usedforsecurity=False).hexdigest()[:10]

    nodes: dict[str, _Node] = {}
    for name in names:
        meta = raw_nodes[name] or {}
        is_start = name in starts or meta.get("type") == "start"
        is_router = name in routers or bool(meta.get("is_router")) or meta.get("type") == "router"
        is_and = meta.get("trigger_condition_type") == "AND"
        status = step_status.get(name, "not-run") if step_status is not None else None
        caption = _caption(is_start, is_router, is_and, status)
        text_w = max(len(_shorten(name, NAME_MAX_CHARS)) * NAME_CHAR_W, len(caption) * SMALL_CHAR_W)
        width = max(MIN_NODE_W, text_w + 2 * PAD_X) + (2 * ROUTER_INSET if is_router else 0)
        nodes[name] = _Node(name, is_start, is_router, is_and, status, caption, width)

    edges = _collect_edges(structure, names)
    discovered = _find_back_edges(names, starts, edges)
    for edge in edges:
        if edge.source == edge.target:
            edge.is_back = True
    rank = _rank_nodes(names, edges)
    items = _build_items(nodes, edges, rank)
    discovery = {nodes[name].item: position for position, name in enumerate(discovered)}
    rank_count = max(rank.values(), default=-1) + 1
    layers = _order_layers(items, discovery, rank_count) if rank_count else []
    _assign_x(layers, items, [edge.chain for edge in edges if edge.chain])

    canvas = _Canvas()
    for node in nodes.values():
        _draw_node(canvas, node, items[node.item])
    node_boxes = [
        (items[n.item].x - n.width / 2, _rank_top(items[n.item].rank), n.width, NODE_H) for n in nodes.values()
    ]
    taken = list(node_boxes)
    routes = _route_edges(edges, items, nodes)
    # Forward edges first so their labels get the best spots; loops' labels fit around them.
    samples = {number: _sample(segments) for number, segments in routes.items()}
    for number in sorted(routes, key=lambda n: edges[n].is_back):
        foreign = [point for other, points in samples.items() if other != number for point in points]
        _draw_edge(canvas, edges[number], routes[number], prefix, taken, foreign)

    if not nodes:
        canvas.labels.append('<text class="flow-diagram__empty" x="0" y="20" text-anchor="middle">No methods</text>')
        canvas.include(-100, 0)
        canvas.include(100, 30)
    min_x, max_x = canvas.min_x - MARGIN, canvas.max_x + MARGIN
    if max_x - min_x < MIN_VIEW_W:
        extra = (MIN_VIEW_W - (max_x - min_x)) / 2
        min_x, max_x = min_x - extra, max_x + extra
    min_y, max_y = canvas.min_y - MARGIN, canvas.max_y + MARGIN
    view_box = f"{_num(min_x)} {_num(min_y)} {_num(max_x - min_x)} {_num(max_y - min_y)}"

    summary = f"{len(nodes)} methods"
    if starts:
        summary += "; starts with " + ", ".join(starts)
    if routers & set(names):
        summary += "; routers: " + ", ".join(n for n in names if n in routers)
    loops = sum(1 for e in edges if e.is_back)
    if loops:
        summary += f"; {loops} loop{'s' if loops != 1 else ''}"
    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="flow-diagram" role="img" '
            f'aria-labelledby="{prefix}-title {prefix}-desc" viewBox="{view_box}" width="100%" '
            f'preserveAspectRatio="xMidYMin meet" font-family="monospace">',
            f'<title id="{prefix}-title">{_esc(f"Flow diagram of {flow_name}")}</title>',
            f'<desc id="{prefix}-desc">{_esc(summary)}</desc>',
            f"<defs>{_markers(prefix)}</defs>",
            '<g class="flow-diagram__edges">',
            *canvas.edges,
            '</g><g class="flow-diagram__nodes">',
            *canvas.nodes,
            '</g><g class="flow-diagram__labels">',
            *canvas.labels,
            "</g></svg>",
        ]
    )
