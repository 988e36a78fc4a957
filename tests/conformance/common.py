"""What the conformance flows share: small models, crews on the configured LLM, and test hazards.

Agents get their model as a flow author's would, from `build_llm()` (the demo model offline), except where a
flow checks what an agent without `llm=` gets.
"""

from __future__ import annotations

from crewai import Agent, Crew, Process, Task
from pydantic import BaseModel

# The conformance flows' only tie to the demo model's module: flows and tests import it from here.
from reviewconsole.llm.configured import build_llm
from tests.engine_flows import maybe_block, maybe_fail, side_effect

__all__ = ["NoInputs", "TopicInputs", "agent", "build_llm", "crew", "hazard"]


class NoInputs(BaseModel):
    pass


class TopicInputs(BaseModel):
    topic: str = "solar panels"


def hazard(step: str) -> None:
    """Where a test injects a failure (FAIL_STEP) or a worker kill (BLOCK_STEP); logs the step's execution."""
    side_effect(step)
    maybe_block(step)
    maybe_fail(step)


def agent(role: str, *, tools: list | None = None, with_llm: bool = True) -> Agent:
    """A quiet single-iteration agent; `with_llm=False` leaves the model to whatever an agent gets by default."""
    extra = {"llm": build_llm()} if with_llm else {}
    return Agent(
        role=role,
        goal=f"Do the {role.lower()}'s job well",
        backstory=f"An experienced {role.lower()}.",
        tools=tools or [],
        allow_delegation=False,
        max_iter=2,
        verbose=False,
        **extra,
    )


def crew(member: Agent, description: str, output: type[BaseModel] | None = None, *, tools: list | None = None) -> Crew:
    """One agent, one task: the smallest crew the examples build."""
    work = Task(
        description=description,
        expected_output="A short, factual answer",
        agent=member,
        output_pydantic=output,
        tools=tools or [],
    )
    return Crew(agents=[member], tasks=[work], process=Process.sequential, verbose=False)
