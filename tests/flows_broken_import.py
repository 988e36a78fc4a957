"""A flow module whose import fails after it registered a flow (FLOW_MODULES entry of the registry tests)."""

from crewai.flow.flow import Flow, start
from crewai.flow.persistence import persist
from pydantic import BaseModel

from reviewconsole.engine.registry import register_flow


class HalfInputs(BaseModel):
    topic: str = ""


class HalfState(BaseModel):
    id: str = ""
    topic: str = ""


@register_flow(name="half_loaded", title="Half loaded (test)", inputs=HalfInputs, output_types=["invoice"])
@persist()
class HalfLoadedFlow(Flow[HalfState]):
    @start()
    def begin(self) -> str:
        return self.state.topic


import reviewconsole_no_such_dependency  # noqa: E402, F401 - the module's failure, after a flow registered
