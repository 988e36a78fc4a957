"""Content production: research a topic, write and edit an article, have it approved or revised.

research → evaluate_research ─ insufficient → deepen_research → evaluate_research (at most twice)
                             ├ sufficient ───┐
                             └ thin_research ┴→ write_draft → edit_draft → gate_draft
gate_draft ─ auto_approved ───────────────────────────→ publish
           └ human_review → review_draft → after_review ─ approved → publish
                                                      ├ revise → write_draft (at most twice)
                                                      └ abandon → abandon_article

Each step runs one sequential crew (flows/crews.py). The flow keeps every
crew's typed answer in its state, so a resumed run continues from what the
earlier steps found.
"""

from __future__ import annotations

from typing import Annotated

from crewai.flow.flow import Flow, listen, or_, router, start
from crewai.flow.human_feedback import HumanFeedbackResult
from crewai.flow.persistence import persist
from pydantic import BaseModel, Field

from flows.content_demo import demo_article, demo_research
from flows.crews import agent, run_crew, task
from reviewconsole.autonomy.services import gate
from reviewconsole.engine.registry import register_flow
from reviewconsole.engine.summaries import SummaryField, register_summary
from reviewconsole.llm.responders import register_responder
from reviewconsole.reviews.decorators import human_review, review_decision

OUTPUT_TYPE = "article_draft"
# Research is enough for an article when the analyst is this sure and cites this many sources.
MIN_RESEARCH_CONFIDENCE = 0.7
MIN_SOURCES = 3
# Extra research passes before writing on thin research rather than looping forever.
MAX_DEEPEN_PASSES = 2
# Rewrites after a rejection before the article is given up; a third "no" means the brief itself is wrong.
MAX_REVISIONS = 2

SAMPLE_INPUTS: dict[str, dict] = {
    "broad topic: research sufficient at once": {"topic": "Remote work and productivity"},
    "well-known topic: confident draft": {"topic": "Renewable energy adoption in Europe"},
    "narrow topic: one deeper research pass": {"topic": "Beekeeping cooperatives in rural Portugal"},
    "narrow historical topic: one deeper research pass": {"topic": "Lighthouse automation on the Scottish coast"},
    "one-word topic: research stays thin, review forced": {"topic": "Quasicrystals"},
}


class ContentInputs(BaseModel):
    topic: str = Field(min_length=1, max_length=200, description="What the article is about, in a few words.")


class ResearchOutput(BaseModel):
    summary: str = Field(description="Two or three sentences on what the research found.")
    key_stats: list[str] = Field(default_factory=list, description="Figures worth quoting, each with its number.")
    sources: list[str] = Field(default_factory=list, description="Where the figures come from (URLs or citations).")
    confidence: float = Field(default=0.0, ge=0, le=1, description="How sure the analyst is the research suffices.")


class ArticleDraft(BaseModel):
    # Bounds far above a 400-word explainer (a rewrite appends the reviewer's notes to the body); they stop an
    # edit, or a runaway model, from publishing a megabyte, and the edit form and API schema show them.
    title: str = Field(max_length=300, json_schema_extra={"widget": "text"})
    standfirst: str = Field(default="", max_length=1000, description="One-sentence summary under the title.")
    body: str = Field(max_length=50_000)
    sources: list[Annotated[str, Field(max_length=2000)]] = Field(default_factory=list, max_length=50)
    confidence: float = Field(default=0.0, ge=0, le=1)


class ContentState(BaseModel):
    id: str = ""
    topic: str = ""
    stage: str = "received"
    research: ResearchOutput | None = None
    deepen_passes: int = 0
    # True when the research was still below the bar after the last deepen pass.
    research_thin: bool = False
    draft: ArticleDraft | None = None
    revisions: int = 0
    reviewer_notes: list[str] = []
    reviewed: bool = False


# --------------------------------------------------------------------------- crews


# Agents are built per crew run (``agent(**RESEARCHER)``) so each picks up the LLM configured at that moment.
RESEARCHER = {
    "role": "Research analyst",
    "goal": "Find verifiable figures and sources about {topic}",
    "backstory": "You brief journalists. You quote a number only with its source and say when evidence is thin.",
}
WRITER = {
    "role": "Staff writer",
    "goal": "Turn research into a clear, accurate explainer about {topic}",
    "backstory": "You write 400-word explainers for a general audience and never invent a figure.",
}
EDITOR = {
    "role": "Copy editor",
    "goal": "Make the article about {topic} correct, tight and ready to publish",
    "backstory": "You check every figure against the research and cut what does not earn its place.",
}


def research_crew(topic: str, research_pass: int, earlier: ResearchOutput | None) -> ResearchOutput:
    """One research pass; a later pass builds on the earlier findings instead of starting over."""
    research = task(
        "Research the topic below for a short explainer article.\n"
        "Topic: {topic}\n"
        "Research pass: {research_pass}\n"
        "Earlier findings: {earlier}\n\n"
        "Collect key statistics, each with its figure, and the sources they come from. On a later pass keep the "
        "earlier findings and add new, independent ones. Rate how confident you are that the findings are enough "
        "for a well-sourced article.",
        "A summary, the key statistics, their sources and your confidence between 0 and 1.",
        agent(**RESEARCHER),
        ResearchOutput,
    )
    inputs = {
        "topic": topic,
        "research_pass": research_pass,
        "earlier": earlier.model_dump_json() if earlier else "none",
    }
    return run_crew([research], ResearchOutput, inputs)


def writing_crew(topic: str, research: ResearchOutput, draft: ArticleDraft | None, notes: str) -> ArticleDraft:
    """A first draft from the research, or, given the rejected draft and the reviewer's notes, a rewrite."""
    if draft is None:
        description = (
            "Write a first draft of an explainer article.\n"
            "Topic: {topic}\n"
            "Research: {research}\n\n"
            "Use only the figures in the research and list its sources."
        )
    else:
        description = (
            "Rewrite the draft below so that it answers every point the reviewer made.\n"
            "Topic: {topic}\n"
            "Research: {research}\n"
            "Draft: {draft}\n"
            "Reviewer notes: {notes}\n\n"
            "Keep what the reviewer did not object to; use only the figures in the research."
        )
    write = task(
        description,
        "The article: title, standfirst, body, sources and your confidence.",
        agent(**WRITER),
        ArticleDraft,
    )
    inputs = {
        "topic": topic,
        "research": research.model_dump_json(),
        "draft": draft.model_dump_json() if draft else "",
        "notes": notes,
    }
    return run_crew([write], ArticleDraft, inputs)


def editing_crew(topic: str, research: ResearchOutput, draft: ArticleDraft) -> ArticleDraft:
    """Copy-edit and fact-check the draft; the editor's confidence is what the autonomy gate judges."""
    edit = task(
        "Edit the draft below for publication.\n"
        "Topic: {topic}\n"
        "Research: {research}\n"
        "Draft to edit: {draft}\n\n"
        "Check every figure against the research, tighten the prose and keep the sources. Rate your confidence "
        "that the edited article can be published as it stands.",
        "The edited article: title, standfirst, body, sources and your confidence between 0 and 1.",
        agent(**EDITOR),
        ArticleDraft,
    )
    inputs = {"topic": topic, "research": research.model_dump_json(), "draft": draft.model_dump_json()}
    return run_crew([edit], ArticleDraft, inputs)


def research_is_sufficient(research: ResearchOutput) -> bool:
    return research.confidence >= MIN_RESEARCH_CONFIDENCE and len(research.sources) >= MIN_SOURCES


# --------------------------------------------------------------------------- flow


@register_flow(
    name="content_production",
    title="Content production",
    inputs=ContentInputs,
    output_types=[OUTPUT_TYPE],
    review_reasons={"thin_research": "Written on thin research", "revision": "Revised after a rejection"},
)
@persist()
class ContentProductionFlow(Flow[ContentState]):
    """Research a topic, write and edit an article, then publish it or revise it with the reviewer's notes."""

    @start()
    def research(self) -> dict:
        self.state.research = research_crew(self.state.topic, 0, None)
        self.state.stage = "researched"
        return self.state.research.model_dump(mode="json")

    @listen("insufficient")
    def deepen_research(self) -> dict:
        self.state.deepen_passes += 1
        self.state.research = research_crew(self.state.topic, self.state.deepen_passes, self.state.research)
        return self.state.research.model_dump(mode="json")

    @router(or_(research, deepen_research), emit=["sufficient", "insufficient", "thin_research"])
    def evaluate_research(self) -> str:
        if research_is_sufficient(self.state.research):
            return "sufficient"
        if self.state.deepen_passes < MAX_DEEPEN_PASSES:
            return "insufficient"
        # Out of passes: write anyway, but remember it so the draft is always reviewed.
        self.state.research_thin = True
        return "thin_research"

    # Labels only, not or_(…, a_revise_method): CrewAI fires a plain or_
    # listener once and re-arms it only when a router emits one of its labels
    # again, so a method trigger would end the revision loop. (Routers, like
    # evaluate_research above, are never held back this way.)
    @listen(or_("sufficient", "thin_research", "revise"))
    def write_draft(self) -> dict:
        # After a rejection the writer gets the rejected draft and the latest notes to answer.
        rejected = self.state.draft if self.state.revisions else None
        notes = self.state.reviewer_notes[-1] if rejected else ""
        self.state.draft = writing_crew(self.state.topic, self.state.research, rejected, notes)
        self.state.stage = "revised" if rejected else "drafted"
        return self.state.draft.model_dump(mode="json")

    @listen(write_draft)
    def edit_draft(self) -> dict:
        self.state.draft = editing_crew(self.state.topic, self.state.research, self.state.draft)
        self.state.stage = "edited"
        return self.state.draft.model_dump(mode="json")

    @router(edit_draft, emit=["human_review", "auto_approved"])
    def gate_draft(self) -> str:
        # Thin research and rewrites are always read by a person: the first may
        # carry unsupported claims, the second answers a reviewer who asked to see it again.
        reason = "thin_research" if self.state.research_thin else "revision" if self.state.revisions else None
        return gate(OUTPUT_TYPE, self.state.draft.confidence, force_review=reason is not None, reason=reason)

    # The decision is read by a router (no `emit`), because a rejection needs
    # the reviewer's comment and reason code for the rewrite, and the revision
    # count decides between rewriting and giving up.
    @listen("human_review")
    @human_review(output_type=OUTPUT_TYPE, schema=ArticleDraft, message="Approve the article, edit it, or reject it.")
    def review_draft(self) -> ArticleDraft:
        return self.state.draft

    @router(review_draft, emit=["approved", "revise", "abandon"])
    def after_review(self, result: HumanFeedbackResult) -> str:
        decision = review_decision(result, ArticleDraft)
        if decision.outcome == "approved":
            self.state.draft = decision.output
            self.state.reviewed = True
            return "approved"
        self.state.reviewer_notes.append(decision.comment or f"Rejected: {decision.reason_code or 'no reason'}")
        if self.state.revisions >= MAX_REVISIONS:
            return "abandon"
        self.state.revisions += 1
        return "revise"

    @listen(or_("approved", "auto_approved"))
    def publish(self) -> dict:
        self.state.stage = "published"
        return {
            **self._summary(),
            "article": self.state.draft.model_dump(mode="json"),
            "reviewed": self.state.reviewed,
        }

    @listen("abandon")
    def abandon_article(self) -> dict:
        self.state.stage = "abandoned"
        return {**self._summary(), "last_draft": self.state.draft.model_dump(mode="json")}

    def _summary(self) -> dict:
        return {
            "stage": self.state.stage,
            "topic": self.state.topic,
            "deepen_passes": self.state.deepen_passes,
            "research_thin": self.state.research_thin,
            "revisions": self.state.revisions,
            "reviewer_notes": self.state.reviewer_notes,
            "sources": list(self.state.research.sources),
        }


# Teach the offline demo model to answer the content crews (see flows/content_demo.py).
register_responder(ResearchOutput, demo_research)
register_responder(ArticleDraft, demo_article)
# A draft is told apart by its title and standfirst, and weighed by how many sources back it.
register_summary(
    OUTPUT_TYPE,
    [
        SummaryField("title", "Title"),
        SummaryField("standfirst", "Standfirst"),
        SummaryField("sources.0", "First source"),
    ],
)
