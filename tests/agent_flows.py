"""Flows whose agents rely on what CrewAI builds on its own, registered when FLOW_MODULES includes this module.

Agents without ``llm=``, a tool-using agent with a typed task output, a
hierarchical crew whose manager delegates, and a crew with memory: each as a
CrewAI example writes it, run by the engine in tests/test_agent_defaults.py.
"""

from __future__ import annotations

from crewai import Agent, Crew, Process, Task
from crewai.flow.flow import Flow, start
from crewai.flow.persistence import persist
from crewai.tools import BaseTool
from pydantic import BaseModel, Field

from reviewconsole.engine.registry import register_flow
from reviewconsole.llm.demo_model import DemoLLM

TIDE = "High tide 06:12"


class TideArgs(BaseModel):
    harbour: str = Field(description="The harbour's name")
    day: int = Field(ge=1, le=31, description="Day of the month")


class TideTable(BaseTool):
    """Answers from its arguments alone, so its text in an answer proves it ran."""

    name: str = "tide_table"
    description: str = "The time of high tide at a harbour on a day of the month."
    args_schema: type[BaseModel] = TideArgs

    def _run(self, harbour: str, day: int) -> str:
        return f"{TIDE} on day {day}"


class Note(BaseModel):
    headline: str
    detail: str


class AgentInputs(BaseModel):
    topic: str = "tides at Dover"
    function_calling: bool = False


class AgentState(BaseModel):
    id: str = ""
    topic: str = ""
    function_calling: bool = False


def _harbour_master(**llm: DemoLLM) -> Agent:
    return Agent(
        role="Harbour master",
        goal="Report the tides",
        backstory="Keeps the tide table.",
        tools=[TideTable()],
        max_iter=3,
        **llm,
    )


def _note_task(topic: str, agent: Agent | None = None) -> Task:
    return Task(
        description=f"Write a note about {topic}.", expected_output="A short note", output_pydantic=Note, agent=agent
    )


def _answer(crew: Crew) -> dict:
    output = crew.kickoff()
    return {"note": output.pydantic.model_dump(), "models": sorted({str(agent.llm.model) for agent in crew.agents})}


@register_flow(name="agent_without_llm", title="Agent without llm= (test)", inputs=AgentInputs)
@persist()
class AgentWithoutLlmFlow(Flow[AgentState]):
    """One agent declared without ``llm=``: it runs on whatever model the console is configured with."""

    @start()
    def write(self) -> dict:
        writer = Agent(role="Writer", goal="Write notes", backstory="Writes short notes.", max_iter=3)
        return _answer(Crew(agents=[writer], tasks=[_note_task(self.state.topic, writer)]))


@register_flow(name="agent_with_tool", title="Agent with a tool (test)", inputs=AgentInputs)
@persist()
class AgentWithToolFlow(Flow[AgentState]):
    """A tool-using agent whose task wants a typed answer; ``function_calling`` picks how tools are offered."""

    @start()
    def report(self) -> dict:
        master = _harbour_master(llm=DemoLLM(function_calling=self.state.function_calling))
        return _answer(Crew(agents=[master], tasks=[_note_task(self.state.topic, master)]))


@register_flow(name="hierarchical_crew", title="Hierarchical crew (test)", inputs=AgentInputs)
@persist()
class HierarchicalCrewFlow(Flow[AgentState]):
    """A manager on ``manager_llm`` delegates the task to the one coworker, who uses its tool."""

    @start()
    def manage(self) -> dict:
        llm = DemoLLM(function_calling=self.state.function_calling)
        tasks = [_note_task(self.state.topic)]
        crew = Crew(agents=[_harbour_master(llm=llm)], tasks=tasks, process=Process.hierarchical, manager_llm=llm)
        return _answer(crew)


@register_flow(name="planned_crew", title="Crew that plans (test)", inputs=AgentInputs)
@persist()
class PlannedCrewFlow(Flow[AgentState]):
    """``planning=True`` without ``planning_llm``: CrewAI plans on a model it names itself unless told otherwise."""

    @start()
    def plan(self) -> dict:
        writer = Agent(role="Writer", goal="Write notes", backstory="Writes short notes.", llm=DemoLLM(), max_iter=3)
        return _answer(Crew(agents=[writer], tasks=[_note_task(self.state.topic, writer)], planning=True))


@register_flow(name="crew_with_memory", title="Crew with memory (test)", inputs=AgentInputs)
@persist()
class CrewWithMemoryFlow(Flow[AgentState]):
    """``memory=True`` with no embedder, as CrewAI's memory quick start writes it."""

    @start()
    def remember(self) -> str:
        writer = Agent(role="Writer", goal="Write notes", backstory="Writes short notes.", llm=DemoLLM(), max_iter=3)
        task = Task(description=f"Write a note about {self.state.topic}.", expected_output="A short note", agent=writer)
        return Crew(agents=[writer], tasks=[task], memory=True).kickoff().raw
