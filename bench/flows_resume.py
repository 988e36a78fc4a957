"""The flow `bench/resume.py` measures, registered when FLOW_MODULES includes this module.

It pauses at once for review, in the project's own pattern (`@human_review`, then a router on the
decision), and the router's first statement takes the wall-clock time: the moment the resumed flow runs
its next step. The flow returns that time, so the benchmark reads it from the run's result. Nothing else
happens in the flow (no LLM, no I/O), so the latency measured is the console's and the queue's alone.
"""

from __future__ import annotations

import time

from crewai.flow.flow import Flow, listen, or_, router, start
from crewai.flow.human_feedback import HumanFeedbackResult
from crewai.flow.persistence import persist
from pydantic import BaseModel

from reviewconsole.engine.registry import register_flow
from reviewconsole.reviews.decorators import human_review, review_decision

FLOW_NAME = "bench_resume"
OUTPUT_TYPE = "bench_resume"


class ResumeDraft(BaseModel):
    label: str = "bench"
    confidence: float = 0.5


class ResumeInputs(BaseModel):
    label: str = "bench"


class ResumeState(BaseModel):
    id: str = ""
    label: str = ""
    outcome: str = ""
    # time.time() of the worker when the step after the decision began (epoch seconds).
    next_step_started: float = 0.0


@register_flow(name=FLOW_NAME, title="Pause for review (bench)", inputs=ResumeInputs, output_types=[OUTPUT_TYPE])
@persist()
class BenchResumeFlow(Flow[ResumeState]):
    """draft (paused for review) → route (timestamped) → finish."""

    @start()
    @human_review(output_type=OUTPUT_TYPE, schema=ResumeDraft, message="Bench: approve or reject")
    def draft(self) -> ResumeDraft:
        return ResumeDraft(label=self.state.label)

    @router(draft, emit=["approved", "rejected"])
    def route(self, result: HumanFeedbackResult) -> str:
        # First, before any work of the step: the time is that of the step starting.
        started = time.time()
        self.state.outcome = review_decision(result, ResumeDraft).outcome
        self.state.next_step_started = started
        return self.state.outcome

    @listen(or_("approved", "rejected"))
    def finish(self) -> dict:
        return {"outcome": self.state.outcome, "next_step_started": self.state.next_step_started}
