"""Flows in the shapes of CrewAI's public example flows (written here, not copied)."""

from __future__ import annotations

import asyncio
from typing import Literal

from crewai import CrewOutput
from crewai.flow.flow import Flow, and_, listen, or_, router, start
from crewai.flow.human_feedback import HumanFeedbackResult, human_feedback
from crewai.flow.persistence import persist
from pydantic import BaseModel, Field

from reviewconsole.engine.registry import register_flow
from tests.conformance.common import TopicInputs, agent, build_llm, crew, hazard

# --- Lead scoring with a human step (shape of CrewAI's lead-score flow) --------------------------------------


class Lead(BaseModel):
    name: str
    company: str


class LeadScore(BaseModel):
    name: str = ""
    score: int = Field(default=0, ge=0, le=100)
    reason: str = ""


class LeadInputs(BaseModel):
    leads: list[str] = ["Ada at Initech", "Grace at Globex"]


class LeadState(BaseModel):
    id: str = ""
    leads: list[str] = []
    top: LeadScore | None = None
    email: str = ""
    verdict: str = ""


@register_flow(
    name="conf_lead_scoring", title="Lead scoring (conformance)", inputs=LeadInputs, output_types=["conf_lead"]
)
@persist()
class LeadScoringFlow(Flow[LeadState]):
    """Leads are scored by a crew; a person approves the top one before the outreach email is written."""

    @start()
    def load_leads(self) -> list[Lead]:
        hazard("load_leads")
        return [Lead(name=text.split(" at ")[0], company=text.split(" at ")[-1]) for text in self.state.leads]

    @listen(load_leads)
    def score_leads(self, leads: list[Lead]) -> list[CrewOutput]:
        hazard("score_leads")
        scorer = agent("Lead scorer")
        return [crew(scorer, f"Score the lead {lead.name} of {lead.company}", LeadScore).kickoff() for lead in leads]

    @listen(score_leads)
    def pick_top(self, scores: list[CrewOutput]) -> LeadScore:
        hazard("pick_top")
        # The scorer rates; the name is the lead's own, not whatever the model wrote back.
        named = [
            result.pydantic.model_copy(update={"name": text.split(" at ")[0]})
            for result, text in zip(scores, self.state.leads, strict=True)
        ]
        ranked = sorted(named, key=lambda score: score.score, reverse=True)
        self.state.top = ranked[0]
        return ranked[0]

    @listen(pick_top)
    @human_feedback(message="Contact this lead?", emit=["approved", "rejected"], llm=build_llm())
    def review_top(self, top: LeadScore) -> LeadScore:
        return top

    @listen("approved")
    def write_email(self, result: HumanFeedbackResult) -> dict:
        self.state.verdict = "approved"
        self.state.email = f"Dear {result.output.name}, ..."
        return {"contacted": result.output.name, "email": self.state.email, "feedback": result.feedback}

    @listen("rejected")
    def archive(self, result: HumanFeedbackResult) -> dict:
        self.state.verdict = "rejected"
        return {"archived": result.output.name, "feedback": result.feedback}


# --- Self-evaluation loop: a router sends back to a labelled start (shape of CrewAI's self-evaluation flow) -----


class PostState(BaseModel):
    id: str = ""
    topic: str = ""
    post: str = ""
    attempts: int = 0
    drafts: list[str] = []
    valid: bool = False


@register_flow(name="conf_self_evaluation", title="Self-evaluation loop (conformance)", inputs=TopicInputs)
@persist()
class SelfEvaluationFlow(Flow[PostState]):
    """A writer drafts a post until the evaluation accepts it or the retries run out."""

    @start("retry")
    def write_post(self) -> str:
        self.state.attempts += 1
        hazard(f"write_post:{self.state.attempts}")
        result = crew(agent("Copywriter"), f"Write post {self.state.attempts} about {self.state.topic}").kickoff()
        self.state.post = result.raw
        self.state.drafts.append(f"draft {self.state.attempts}")
        return result.raw

    @router(write_post, emit=["retry", "complete", "max_retry_exceeded"])
    def evaluate_post(self) -> str:
        # A stand-in for the LLM judge: the third draft passes, earlier ones go round the loop.
        if len(self.state.drafts) >= 3:
            self.state.valid = True
            return "complete"
        if self.state.attempts >= 5:
            return "max_retry_exceeded"
        return "retry"

    @listen("complete")
    def save_post(self) -> dict:
        hazard("save_post")
        return {"post": self.state.post, "attempts": self.state.attempts}

    @listen("max_retry_exceeded")
    def give_up(self) -> dict:
        return {"gave_up_after": self.state.attempts, "drafts": self.state.drafts}


# --- Book writer: an outline, then chapters written concurrently with kickoff_async (shape of CrewAI's book flow) ---


class ChapterPlan(BaseModel):
    title: str = Field(default="", max_length=80)
    summary: str = Field(default="", max_length=200)


class BookOutline(BaseModel):
    chapters: list[ChapterPlan] = Field(default_factory=list, min_length=2, max_length=3)


class Chapter(BaseModel):
    title: str = ""
    content: str = ""


class BookState(BaseModel):
    id: str = ""
    topic: str = ""
    outline: BookOutline | None = None
    chapters: list[Chapter] = []


@register_flow(name="conf_book_writer", title="Book writer (conformance)", inputs=TopicInputs)
@persist()
class BookWriterFlow(Flow[BookState]):
    """Async start and listeners: the outline's chapters are written at once with `kickoff_async`."""

    @start()
    async def generate_outline(self) -> BookOutline:
        outliner = crew(agent("Outliner"), f"Outline a short book on {self.state.topic}", BookOutline)
        result = await outliner.kickoff_async()
        self.state.outline = result.pydantic
        return result.pydantic

    @listen(generate_outline)
    async def write_chapters(self, outline: BookOutline) -> list[Chapter]:
        hazard("write_chapters")
        # One agent per chapter, as CrewAI's example builds a fresh crew per chapter: an agent's executor refuses
        # to run twice at once, so a shared writer fails whenever two chapters overlap.
        jobs = [crew(agent("Author"), f"Write the chapter '{plan.title}'").kickoff_async() for plan in outline.chapters]
        results = await asyncio.gather(*jobs)
        chapters = [Chapter(title=plan.title, content=r.raw) for plan, r in zip(outline.chapters, results, strict=True)]
        self.state.chapters = chapters
        return chapters

    @listen(write_chapters)
    async def join_book(self, chapters: list[Chapter]) -> dict:
        hazard("join_book")
        return {"titles": [chapter.title for chapter in chapters], "length": sum(len(c.content) for c in chapters)}


# --- Router-based email flow: an async router picks the reply path (shape of CrewAI's email auto-responder) ----


class Email(BaseModel):
    sender: str = "client@example.com"
    subject: str = "Invoice overdue"


class EmailCategory(BaseModel):
    category: Literal["urgent", "routine"] = "routine"
    summary: str = ""


class EmailState(BaseModel):
    id: str = ""
    sender: str = ""
    subject: str = ""
    category: str = ""
    reply: str = ""
    logged: list[str] = []


@register_flow(name="conf_email_router", title="Email router (conformance)", inputs=Email)
@persist()
class EmailRouterFlow(Flow[EmailState]):
    """An async router (and async listeners) route a classified email; the reply waits for the log entry too."""

    @start()
    def classify(self) -> EmailCategory:
        hazard("classify")
        result = crew(agent("Triage assistant"), f"Classify the email '{self.state.subject}'", EmailCategory).kickoff()
        category = EmailCategory(category="urgent" if "overdue" in self.state.subject else "routine", summary="")
        category.summary = result.pydantic.summary
        return category

    @router(classify, emit=["urgent", "routine"])
    async def route(self, category: EmailCategory) -> str:
        await asyncio.sleep(0)
        self.state.category = category.category
        return category.category

    @listen("urgent")
    async def escalate(self) -> str:
        self.state.logged.append("escalated")
        return "escalated"

    @listen("routine")
    async def queue(self) -> str:
        self.state.logged.append("queued")
        return "queued"

    @listen(or_(escalate, queue))
    def log_email(self) -> str:
        self.state.logged.append("logged")
        return "logged"

    @listen(and_(log_email, or_(escalate, queue)))
    def reply(self) -> dict:
        hazard("reply")
        self.state.reply = f"Re: {self.state.subject}"
        return {"category": self.state.category, "reply": self.state.reply, "logged": self.state.logged}


# --- Research handoff: crew results and models passed from step to step (shape of CrewAI's content flows) -----


class Findings(BaseModel):
    headline: str = Field(default="", max_length=120)
    facts: list[str] = Field(default_factory=list, max_length=3)


class Brief(BaseModel):
    headline: str
    fact_count: int


class HandoffState(BaseModel):
    id: str = ""
    topic: str = ""


@register_flow(name="conf_research_handoff", title="Research handoff (conformance)", inputs=TopicInputs)
@persist()
class ResearchHandoffFlow(Flow[HandoffState]):
    """research returns the crew's CrewOutput, brief a model: each listener uses its trigger's value as typed."""

    @start()
    def research(self) -> CrewOutput:
        hazard("research")
        return crew(agent("Researcher"), f"Research {self.state.topic}", Findings).kickoff()

    @listen(research)
    def brief(self, findings: CrewOutput) -> Brief:
        hazard("brief")
        return Brief(headline=findings.pydantic.headline, fact_count=len(findings.pydantic.facts))

    @listen(brief)
    def publish(self, brief: Brief) -> dict:
        hazard("publish")
        return {"headline": brief.headline, "facts": brief.fact_count, "brief_type": type(brief).__name__}
