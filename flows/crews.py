"""Building blocks the seed flows share: agents on the configured LLM, and one-call crew runs.

Every agent gets its model from ``build_llm()``, so ``LLM_MODEL`` (the offline
demo model by default) switches all of them at once. A crew's answer is the
pydantic output of its last task: the typed object the flow keeps in its state.
"""

from __future__ import annotations

from typing import Any, TypeVar

from crewai import Agent, Crew, Process, Task
from pydantic import BaseModel

from reviewconsole.llm.configured import build_llm

OutputT = TypeVar("OutputT", bound=BaseModel)

# One thought-action round plus a retry is enough for the structured tasks
# these crews run; a higher cap only multiplies a confused model's cost.
DEFAULT_MAX_ITER = 3


def agent(role: str, goal: str, backstory: str, *, max_iter: int = DEFAULT_MAX_ITER) -> Agent:
    """An agent on the configured LLM that works alone (no delegation) and quietly."""
    return Agent(
        role=role,
        goal=goal,
        backstory=backstory,
        llm=build_llm(),
        max_iter=max_iter,
        allow_delegation=False,
        verbose=False,
    )


def task(description: str, expected_output: str, assignee: Agent, output: type[BaseModel]) -> Task:
    """A task whose answer must validate as ``output`` (CrewAI asks the LLM for that schema)."""
    return Task(description=description, expected_output=expected_output, agent=assignee, output_pydantic=output)


def run_crew(tasks: list[Task], output: type[OutputT], inputs: dict[str, Any] | None = None) -> OutputT:
    """Run ``tasks`` in order as one sequential crew and return the last task's answer as ``output``.

    ``inputs`` fill the ``{placeholders}`` in task descriptions. A last answer
    that is not an ``output`` (a model that ignored the schema) is validated
    from its raw text, so a bad answer fails the step with a pydantic error
    naming the field instead of travelling on as a string.
    """
    agents = list(dict.fromkeys(t.agent for t in tasks if t.agent is not None))
    result = Crew(agents=agents, tasks=tasks, process=Process.sequential, verbose=False).kickoff(inputs=inputs or {})
    if isinstance(result.pydantic, output):
        return result.pydantic
    return output.model_validate_json(result.raw)
