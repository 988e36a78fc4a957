"""The start-up structure check: every route of every registered flow leads somewhere."""

import pytest
from crewai.flow.flow import Flow, listen, router, start
from crewai.flow.persistence import persist
from pydantic import BaseModel

from reviewconsole.engine.registry import FlowSpec, all_flows
from reviewconsole.engine.structure import FlowStructureError, check_flow_structure


class Inputs(BaseModel):
    topic: str = ""


class State(BaseModel):
    id: str = ""
    topic: str = ""


def spec_for(flow_class: type, inputs: type[BaseModel] = Inputs) -> FlowSpec:
    return FlowSpec(name="sample", title="Sample", flow_class=flow_class, input_model=inputs)


def test_every_registered_flow_passes_the_check():
    names = {spec.name for spec in all_flows()}
    assert {"invoice_processing", "counter", "emit_review"} <= names
    for spec in all_flows():
        check_flow_structure(spec)


def test_router_label_without_listener_is_named():
    @persist()
    class Orphan(Flow[State]):
        @start()
        def begin(self) -> str:
            return "x"

        @router(begin, emit=["yes", "maybe"])
        def choose(self) -> str:
            return "yes"

        @listen("yes")
        def done(self) -> None:
            pass

    with pytest.raises(FlowStructureError, match="Flow 'sample': router 'choose' emits label 'maybe' that no method"):
        check_flow_structure(spec_for(Orphan))


def test_listened_label_that_nothing_emits_is_named():
    @persist()
    class Deaf(Flow[State]):
        @start()
        def begin(self) -> str:
            return "x"

        @router(begin, emit=["go"])
        def choose(self) -> str:
            return "go"

        @listen("go")
        def went(self) -> None:
            pass

        @listen("stop")
        def stopped(self) -> None:
            pass

    with pytest.raises(FlowStructureError, match="label 'stop' is listened to but no router emits it"):
        check_flow_structure(spec_for(Deaf))


def test_router_without_declared_labels_loads():
    """CrewAI's docs write routers without `emit=`; any label the flow listens to may come from them."""

    @persist()
    class Dynamic(Flow[State]):
        @start()
        def begin(self) -> str:
            return "x"

        @router(begin)
        def choose(self):
            return "anything"

        @listen("anything")
        def then(self) -> None:
            pass

    check_flow_structure(spec_for(Dynamic))


def test_flow_without_persist_is_refused():
    class Forgetful(Flow[State]):
        @start()
        def begin(self) -> str:
            return "x"

    with pytest.raises(FlowStructureError, match=r"needs @persist\(\)"):
        check_flow_structure(spec_for(Forgetful))


def test_human_review_branch_must_pause():
    @persist()
    class NoPause(Flow[State]):
        @start()
        def begin(self) -> str:
            return "x"

        @router(begin, emit=["human_review", "auto_approved"])
        def gatekeeper(self) -> str:
            return "human_review"

        @listen("human_review")
        def review(self) -> None:
            pass

        @listen("auto_approved")
        def publish(self) -> None:
            pass

    with pytest.raises(FlowStructureError, match="'review' listens to 'human_review' but does not pause"):
        check_flow_structure(spec_for(NoPause))


def test_input_without_state_field_is_named():
    class Extra(BaseModel):
        topic: str = ""
        audience: str = ""

    @persist()
    class Narrow(Flow[State]):
        @start()
        def begin(self) -> str:
            return "x"

    with pytest.raises(FlowStructureError, match="input 'audience' has no field of the same name"):
        check_flow_structure(spec_for(Narrow, inputs=Extra))
