"""Server-side flow diagrams: content, escaping and status classes of the SVG."""

import xml.etree.ElementTree as ET

# isort: off
# reviewconsole sets CrewAI's offline environment, so it must be imported before crewai.
import reviewconsole  # noqa: F401
from crewai.flow.flow import Flow, and_, listen, or_, router, start
from crewai.flow.visualization import build_flow_structure

# isort: on
from reviewconsole.engine.diagram import render_flow_svg

SVG = "{http://www.w3.org/2000/svg}"


class LinearFlow(Flow):
    @start()
    def fetch(self) -> str:
        return "data"

    @listen(fetch)
    def summarise(self) -> str:
        return "summary"

    @listen(summarise)
    def store(self) -> None:
        return None


class ReviewLoopFlow(Flow):
    """A router sends work back to an earlier step: the diagram has a loop."""

    @start()
    def draft(self) -> str:
        return "draft"

    @listen(or_(draft, "revise"))
    def review(self) -> str:
        return "review"

    @router(review, emit=["approved", "needs_work"])
    def decide(self) -> str:
        return "approved"

    @listen("needs_work")
    def revise(self) -> str:
        return "revised"

    @listen("approved")
    def publish(self) -> None:
        return None


class BranchingFlow(Flow):
    """Two starts, a three-way router, an AND join and a router looping to its own trigger."""

    @start()
    def fetch_ticket(self) -> None: ...

    @start()
    def load_policies(self) -> None: ...

    @router(fetch_ticket, emit=["billing", "technical", "spam"])
    def triage(self) -> None: ...

    @listen("billing")
    def billing_lookup(self) -> None: ...

    @listen("technical")
    def search_docs(self) -> None: ...

    @listen("spam")
    def close_as_spam(self) -> None: ...

    @listen(or_(billing_lookup, search_docs, "retry"))
    def draft_answer(self) -> None: ...

    @router(and_(draft_answer, load_policies), emit=["retry", "ok"])
    def check(self) -> None: ...

    @listen("ok")
    def send_reply(self) -> None: ...


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def node_groups(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-method"): g for g in root.iter(f"{SVG}g") if "node" in (g.get("class") or "").split()}


def all_text(root: ET.Element) -> str:
    return "\n".join(root.itertext())


def test_linear_flow_is_valid_accessible_svg() -> None:
    svg = render_flow_svg(build_flow_structure(LinearFlow))
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert len(root.get("viewBox", "").split()) == 4
    title = root.find(f"{SVG}title")
    assert title is not None and "LinearFlow" in (title.text or "")
    assert set(node_groups(root)) == {"fetch", "summarise", "store"}
    assert "style=" not in svg and "<script" not in svg
    assert " on" not in svg.replace(" onerror", "")  # no event-handler attributes at all
    classes = node_groups(root)["fetch"].get("class", "").split()
    assert "node--start" in classes
    assert not any(c.startswith("status--") for c in classes)  # no run, no status classes


def test_loop_flow_nodes_router_labels_and_back_edge() -> None:
    structure = build_flow_structure(ReviewLoopFlow)
    root = parse(render_flow_svg(structure))
    nodes = node_groups(root)
    assert set(nodes) == set(structure["nodes"])
    assert "node--router" in nodes["decide"].get("class", "").split()
    assert "node--listener" in nodes["publish"].get("class", "").split()
    assert nodes["decide"].find(f"{SVG}polygon") is not None  # routers are hexagons, others boxes
    assert nodes["publish"].find(f"{SVG}rect") is not None

    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "edge-label__text"]
    assert sorted(labels) == ["approved", "needs_work"]

    edges = [g for g in root.iter(f"{SVG}g") if "edge" in (g.get("class") or "").split()]
    back = [g for g in edges if "edge--back" in g.get("class", "")]
    assert len(back) == 1
    assert "revise" in back[0].findtext(f"{SVG}title", "") and "review" in back[0].findtext(f"{SVG}title", "")
    path = back[0].find(f"{SVG}path")
    assert path is not None and "C" in path.get("d", "")  # curved
    # Every arrowhead referenced is defined in this SVG.
    marker_ids = {m.get("id") for m in root.iter(f"{SVG}marker")}
    for p in root.iter(f"{SVG}path"):
        ref = p.get("marker-end")
        if ref:
            assert ref[len("url(#") : -1] in marker_ids


def test_branching_flow_every_event_labelled_and_status_classes() -> None:
    structure = build_flow_structure(BranchingFlow)
    status = {"fetch_ticket": "finished", "triage": "finished", "billing_lookup": "failed", "check": "paused"}
    root = parse(render_flow_svg(structure, step_status=status))
    nodes = node_groups(root)
    assert set(nodes) == set(structure["nodes"])
    for name, value in status.items():
        assert f"status--{value}" in nodes[name].get("class", "").split()
    assert "status--not-run" in nodes["send_reply"].get("class", "").split()
    assert "node--and" in nodes["check"].get("class", "").split()

    text = all_text(root)
    for name in structure["nodes"]:
        assert name in text
    for router_name in structure["router_methods"]:
        for event in structure["nodes"][router_name].get("router_events", []):
            assert event in [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "edge-label__text"]
    assert any("edge--back" in (g.get("class") or "") for g in root.iter(f"{SVG}g"))


def test_node_boxes_do_not_overlap() -> None:
    root = parse(render_flow_svg(build_flow_structure(BranchingFlow)))
    boxes = []
    for group in node_groups(root).values():
        shape = group.find(f"{SVG}rect[@class='node__shape']")
        if shape is None:
            shape = group.find(f"{SVG}polygon[@class='node__shape']")
            points = [tuple(map(float, p.split(","))) for p in shape.get("points").split()]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            boxes.append((min(xs), min(ys), max(xs), max(ys)))
        else:
            x, y = float(shape.get("x")), float(shape.get("y"))
            boxes.append((x, y, x + float(shape.get("width")), y + float(shape.get("height"))))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_untrusted_names_are_escaped() -> None:
    evil_node = "<script>alert(1)</script>"
    evil_event = '"><img src=x onerror=alert(1)>'
    structure = {
        "nodes": {
            "begin": {"type": "start", "class_name": "Evil<Flow>"},
            "route": {"type": "router", "is_router": True, "router_events": [evil_event], "class_name": "Evil<Flow>"},
            evil_node: {"type": "listen", "trigger_methods": [evil_event], "class_name": "Evil<Flow>"},
        },
        "edges": [
            {"source": "begin", "target": "route", "condition_type": "OR", "is_router_event": False},
            {"source": "route", "target": evil_node, "is_router_event": True, "router_event": evil_event},
            {"source": evil_node, "target": "begin", "condition_type": "OR", "is_router_event": False},
        ],
        "start_methods": ["begin"],
        "router_methods": ["route"],
    }
    svg = render_flow_svg(structure, step_status={evil_node: '" onload="alert(1)', "begin": "finished"})
    assert "<script" not in svg
    assert "<img" not in svg
    assert '" onload=' not in svg and "onload=" not in svg.replace("onload=&quot;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in svg
    assert "Evil&lt;Flow&gt;" in svg

    root = parse(svg)
    nodes = node_groups(root)
    assert evil_node in nodes  # the attribute round-trips to the original text
    assert evil_node in all_text(root)
    assert evil_event in all_text(root)
    # A hostile status becomes one harmless class token instead of extra attributes or classes.
    classes = nodes[evil_node].get("class", "").split()
    assert "status--onload-alert-1" in classes
    assert all(c.startswith(("node", "status--")) for c in classes)


def test_empty_and_self_loop_structures_render() -> None:
    empty = parse(render_flow_svg({"nodes": {}, "edges": [], "start_methods": [], "router_methods": []}))
    assert "No methods" in all_text(empty)

    looping = {
        "nodes": {"poll": {"type": "start"}, "ghost_target_edge_is_ignored": {"type": "listen"}},
        "edges": [
            {"source": "poll", "target": "poll", "is_router_event": False, "condition_type": "OR"},
            {"source": "poll", "target": "missing", "is_router_event": False, "condition_type": "OR"},
        ],
        "start_methods": ["poll"],
        "router_methods": [],
    }
    root = parse(render_flow_svg(looping))
    assert set(node_groups(root)) == {"poll", "ghost_target_edge_is_ignored"}
    assert sum("edge--back" in (g.get("class") or "") for g in root.iter(f"{SVG}g")) == 1
