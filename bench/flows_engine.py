"""The zero-latency flow `bench/engine.py` measures, registered when FLOW_MODULES includes this module.

`zero_flow_class()` builds the class body once per call, so the benchmark's
CrewAI-only baseline and the registered console flow run the very same methods
(flow step methods are not inherited from a base Flow class, so a factory is
the way to share them).
"""

from __future__ import annotations

from crewai.flow.flow import Flow, listen, or_, router, start
from crewai.flow.persistence import persist
from pydantic import BaseModel

from reviewconsole.engine.registry import register_flow


class ZeroInputs(BaseModel):
    label: str = "bench"
    amount: float = 10.0


class ZeroState(BaseModel):
    id: str = ""
    label: str = ""
    amount: float = 0.0
    doubled: float = 0.0
    route: str = ""


def zero_flow_class() -> type[Flow[ZeroState]]:
    """A new class each call: start → step → router (emit) → final listener; no LLM, no I/O, a tiny state."""

    class BenchZeroFlow(Flow[ZeroState]):
        @start()
        def begin(self) -> str:
            return f"begun {self.state.label}"

        @listen(begin)
        def double(self) -> float:
            self.state.doubled = self.state.amount * 2
            return self.state.doubled

        @router(double, emit=["big", "small"])
        def route(self) -> str:
            self.state.route = "big" if self.state.doubled >= 100 else "small"
            return self.state.route

        @listen(or_("big", "small"))
        def finish(self) -> dict:
            return {"label": self.state.label, "doubled": self.state.doubled, "route": self.state.route}

    return BenchZeroFlow


# The console's flow: the project's persistence (the factory registered by
# load_flows) on the class, as flow authors write it.
BenchZeroFlow = register_flow(name="bench_zero", title="Zero-latency flow (bench)", inputs=ZeroInputs)(
    persist()(zero_flow_class())
)
