"""Flows for the CrewAI features the examples leave out: dict state, or_/and_, hierarchical crews, agents
without `llm=`, tools, `exit()` in a step, and `@human_feedback` with and without `emit` and `provider`."""

from __future__ import annotations

import sys

from crewai import Crew, CrewOutput, Process, Task
from crewai.flow.flow import Flow, and_, listen, or_, start
from crewai.flow.human_feedback import HumanFeedbackResult, human_feedback
from crewai.flow.persistence import persist
from crewai.tools import BaseTool
from pydantic import BaseModel, Field

from reviewconsole.engine.registry import register_flow
from reviewconsole.reviews.provider import ReviewConsoleProvider
from tests.conformance.common import NoInputs, TopicInputs, agent, build_llm, crew, hazard
from tests.engine_flows import side_effect


class ListInputs(BaseModel):
    items: list[str] = ["b", "a", "c"]


@register_flow(name="conf_dict_state", title="Dict state with or_ and and_ (conformance)", inputs=ListInputs)
@persist()
class DictStateFlow(Flow[dict]):
    """Unstructured state; two branches joined by and_, and an or_ listener that fires on the first of them."""

    @start()
    def begin(self) -> list[str]:
        hazard("begin")
        return list(self.state["items"])

    @listen(begin)
    def sort_items(self, items: list[str]) -> list[str]:
        hazard("sort_items")
        self.state["sorted"] = sorted(items)
        return self.state["sorted"]

    @listen(begin)
    def count_items(self, items: list[str]) -> int:
        hazard("count_items")
        self.state["count"] = len(items)
        return self.state["count"]

    @listen(or_(sort_items, count_items))
    def note_progress(self) -> str:
        # The two branches run concurrently: which one fires this is not fixed, that it fires once is.
        self.state["progress_notes"] = self.state.get("progress_notes", 0) + 1
        return "progress"

    @listen(and_(sort_items, count_items))
    def merge(self) -> dict:
        return {"sorted": self.state["sorted"], "count": self.state["count"], "notes": self.state["progress_notes"]}


class HierarchyState(BaseModel):
    id: str = ""
    topic: str = ""


@register_flow(name="conf_hierarchical", title="Hierarchical crew (conformance)", inputs=TopicInputs)
@persist()
class HierarchicalFlow(Flow[HierarchyState]):
    """A manager (on `manager_llm`) coordinates two agents; the next step reads the crew's result."""

    @start()
    def plan_and_write(self) -> CrewOutput:
        researcher, writer = agent("Researcher"), agent("Writer")
        tasks = [
            Task(description=f"Research {self.state.topic}", expected_output="Notes"),
            Task(description=f"Write a paragraph on {self.state.topic}", expected_output="A paragraph"),
        ]
        team = Crew(
            agents=[researcher, writer],
            tasks=tasks,
            process=Process.hierarchical,
            manager_llm=build_llm(),
            verbose=False,
        )
        return team.kickoff()

    @listen(plan_and_write)
    def report(self, result: CrewOutput) -> dict:
        return {"tasks": len(result.tasks_output), "has_text": bool(result.raw)}


class Verdict(BaseModel):
    label: str = Field(default="", max_length=40)
    confident: bool = False


@register_flow(name="conf_default_llm", title="Agent without llm= (conformance)", inputs=TopicInputs)
@persist()
class DefaultLLMFlow(Flow[HierarchyState]):
    """An agent built as CrewAI's quickstart builds it, without `llm=`: it runs on the configured model."""

    @start()
    def judge(self) -> Verdict:
        result = crew(agent("Judge", with_llm=False), f"Judge {self.state.topic}", Verdict).kickoff()
        return result.pydantic

    @listen(judge)
    def report(self, verdict: Verdict) -> dict:
        return {"verdict_type": type(verdict).__name__, "has_label": isinstance(verdict.label, str)}


class WordCountArgs(BaseModel):
    text: str = Field(description="The text whose words to count")


class WordCountTool(BaseTool):
    name: str = "word_counter"
    description: str = "Counts the words of a text."
    args_schema: type[BaseModel] = WordCountArgs

    def _run(self, text: str) -> str:
        side_effect("tool:word_counter")
        return str(len(text.split()))


class WordStats(BaseModel):
    words: int = Field(default=0, ge=0)
    comment: str = Field(default="", max_length=200)


@register_flow(name="conf_tool_agent", title="Agent with a tool (conformance)", inputs=TopicInputs)
@persist()
class ToolAgentFlow(Flow[HierarchyState]):
    """A task that gives its agent a tool and wants a typed answer."""

    @start()
    def count(self) -> WordStats:
        counter = agent("Editor")
        result = crew(counter, f"Count the words of '{self.state.topic}'", WordStats, tools=[WordCountTool()]).kickoff()
        return result.pydantic

    @listen(count)
    def report(self, stats: WordStats) -> dict:
        return {"stats_type": type(stats).__name__}


@register_flow(name="conf_exit", title="Step calling exit() (conformance)", inputs=NoInputs)
@persist()
class ExitFlow(Flow[HierarchyState]):
    """A step that ends the process the way a script would: `exit()`."""

    @start()
    def prepare(self) -> str:
        hazard("prepare")
        return "prepared"

    @listen(prepare)
    def bail_out(self) -> str:
        hazard("bail_out")
        sys.exit("no data to process")

    @listen(bail_out)
    def never(self) -> str:
        hazard("never")
        return "unreachable"


class Draft(BaseModel):
    title: str = ""
    words: int = 0
    confidence: float = 0.5


class FeedbackState(BaseModel):
    id: str = ""
    topic: str = ""
    draft: Draft | None = None
    decided: list[str] = []


class _FeedbackSteps:
    """The shape both feedback flows share: a draft reviewed with `emit`, then a note asked for without it."""

    def make_draft(self) -> Draft:
        self.state.draft = Draft(title=f"On {self.state.topic}", words=120, confidence=0.4)
        return self.state.draft

    def record(self, result: HumanFeedbackResult, step: str, output: object) -> None:
        self.state.decided.append(f"{step}:{result.outcome or '-'}:{type(output).__name__}")


@register_flow(
    name="conf_feedback_default",
    title="Human feedback, no provider (conformance)",
    inputs=TopicInputs,
    output_types=["conf_draft"],
)
@persist()
class DefaultFeedbackFlow(Flow[FeedbackState], _FeedbackSteps):
    """`@human_feedback` as CrewAI's docs write it: no provider; in the console it pauses into the queue."""

    @start()
    @human_feedback(message="Is this draft good?", emit=["approved", "rejected"], llm=build_llm())
    def draft(self) -> Draft:
        return self.make_draft()

    @listen("approved")
    @human_feedback(message="Anything for the editor?")
    def ask_note(self, result: HumanFeedbackResult) -> str:
        self.record(result, "draft", result.output)
        return f"approved: {result.output.title}"

    @listen(ask_note)
    def publish(self, result: HumanFeedbackResult) -> dict:
        hazard("publish")
        self.record(result, "note", result.output)
        return {"note": result.feedback, "decided": self.state.decided}

    @listen("rejected")
    def discard(self, result: HumanFeedbackResult) -> dict:
        self.record(result, "draft", result.output)
        return {"discarded": result.feedback, "decided": self.state.decided}


@register_flow(
    name="conf_feedback_console",
    title="Human feedback, console provider (conformance)",
    inputs=TopicInputs,
    output_types=["conf_draft"],
)
@persist()
class ConsoleFeedbackFlow(Flow[FeedbackState], _FeedbackSteps):
    """The same flow with the console's provider named on each step."""

    @start()
    @human_feedback(
        message="Is this draft good?",
        emit=["approved", "rejected"],
        llm=build_llm(),
        provider=ReviewConsoleProvider(output_type="conf_draft", schema=Draft),
    )
    def draft(self) -> Draft:
        return self.make_draft()

    @listen("approved")
    @human_feedback(message="Anything for the editor?", provider=ReviewConsoleProvider(output_type="conf_note"))
    def ask_note(self, result: HumanFeedbackResult) -> str:
        # A paused step's output comes back from CrewAI's saved context as a dict (the console rebuilds the
        # model its provider declares): validating it, as the README shows, works either way.
        draft = Draft.model_validate(result.output)
        self.record(result, "draft", draft)
        return f"approved: {draft.title}"

    @listen(ask_note)
    def publish(self, result: HumanFeedbackResult) -> dict:
        # Without `emit`, the feedback is the reviewer's comment, as a person typing it gives it.
        hazard("publish")
        self.record(result, "note", result.output)
        return {"note": result.feedback, "decided": self.state.decided}

    @listen("rejected")
    def discard(self, result: HumanFeedbackResult) -> dict:
        self.record(result, "draft", Draft.model_validate(result.output))
        return {"discarded": result.feedback, "decided": self.state.decided}
