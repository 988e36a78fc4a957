"""A flow whose steps can leave by the back door, registered when FLOW_MODULES includes this module.

Input `leave_in` names the step (prepare, publish or the async announce) and `how` the way it leaves: "exit"
(`exit(3)`, as a script would), "sys_exit" (`sys.exit()`), "keyboard" (KeyboardInterrupt), "base" (a
BaseException of its own) or "os_exit" (`os._exit(7)`: the process gone, as by a segfault or kill -9). Every
step first logs `step:pid` to SIDE_EFFECT_LOG, so a test sees which process ran what.
"""

import os
import sys

from crewai.flow.flow import Flow, listen, start
from crewai.flow.persistence import persist
from pydantic import BaseModel

from reviewconsole.engine.registry import register_flow
from tests.engine_flows import side_effect


class Abandon(BaseException):
    """Neither an Exception nor a way Python itself stops: a library's own escape hatch."""


def _leave(how: str) -> None:
    if how == "exit":
        exit(3)  # the builtin a script would call
    if how == "sys_exit":
        sys.exit()
    if how == "keyboard":
        raise KeyboardInterrupt
    if how == "base":
        raise Abandon("abandon ship")
    if how == "os_exit":
        os._exit(7)


class UnrulyInputs(BaseModel):
    leave_in: str = ""
    how: str = ""


class UnrulyState(BaseModel):
    id: str = ""
    leave_in: str = ""
    how: str = ""
    done: list[str] = []


def misbehave(state: UnrulyState, step: str) -> None:
    side_effect(f"{step}:{os.getpid()}")
    if state.leave_in == step:
        _leave(state.how)


@register_flow(name="unruly", title="Unruly (test)", inputs=UnrulyInputs)
@persist()
class UnrulyFlow(Flow[UnrulyState]):
    """prepare → publish → announce (async)."""

    @start()
    def prepare(self) -> str:
        misbehave(self.state, "prepare")
        self.state.done.append("prepare")
        return "prepared"

    @listen(prepare)
    def publish(self) -> str:
        misbehave(self.state, "publish")
        self.state.done.append("publish")
        return "published"

    @listen(publish)
    async def announce(self) -> list[str]:
        misbehave(self.state, "announce")
        self.state.done.append("announce")
        return self.state.done
