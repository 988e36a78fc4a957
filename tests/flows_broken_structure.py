"""Two flows in one module, one whose routing cannot work (FLOW_MODULES entry of the registry tests)."""

from crewai.flow.flow import Flow, listen, router, start
from crewai.flow.persistence import persist
from pydantic import BaseModel

from reviewconsole.engine.registry import register_flow


class RouteInputs(BaseModel):
    topic: str = ""


class RouteState(BaseModel):
    id: str = ""
    topic: str = ""


@register_flow(name="misrouted", title="Misrouted (test)", inputs=RouteInputs, output_types=["invoice"])
@persist()
class MisroutedFlow(Flow[RouteState]):
    @start()
    def begin(self) -> str:
        return self.state.topic

    @router(begin, emit=["yes", "maybe"])
    def choose(self) -> str:
        return "yes"

    @listen("yes")
    def done(self) -> str:
        return "done"


@register_flow(name="well_routed", title="Well routed (test)", inputs=RouteInputs)
@persist()
class WellRoutedFlow(Flow[RouteState]):
    @start()
    def begin(self) -> str:
        return self.state.topic.upper()
