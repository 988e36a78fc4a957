"""Lead enrichment: validate a lead, enrich and score it, and draft outreach for the hot ones.

receive_lead → validate_lead ─ invalid → reject_invalid
                             └ valid → recall_company → enrich_company → enrich_contact → score_lead → classify_lead
classify_lead ─ cold_lead → archive
              ├ warm_lead → nurture
              └ hot_lead → draft_outreach → gate_outreach ─ auto_approved ──────────────────────→ outreach_ready
                                                          └ human_review → review_outreach → after_review
after_review ─ approved → outreach_ready
             └ rejected → outreach_rejected

Memory: every enriched run puts the normalised company name in its result;
`recall_company` finds the latest completed run for the same company and
hands what it concluded to the crews, so a known company keeps its profile
and a company that comes back scores as a repeat contact.
"""

from __future__ import annotations

import re
from typing import Literal

from crewai.flow.flow import Flow, listen, or_, router, start
from crewai.flow.human_feedback import HumanFeedbackResult
from crewai.flow.persistence import persist
from pydantic import BaseModel, Field

from flows.crews import agent, run_crew, task
from flows.leads_demo import demo_company, demo_contact, demo_outreach, demo_score
from reviewconsole.autonomy.services import gate
from reviewconsole.engine.registry import register_flow
from reviewconsole.engine.summaries import SummaryField, register_summary
from reviewconsole.llm.responders import register_responder
from reviewconsole.recall import latest_completed_run
from reviewconsole.reviews.decorators import human_review, review_decision

FLOW_NAME = "lead_enrichment"
OUTPUT_TYPE = "outreach_email"
HOT_SCORE = 70
WARM_SCORE = 40

# Personal mailboxes say nothing about the company behind the lead, so there is nothing to enrich.
FREE_MAIL_DOMAINS = frozenset(
    {
        "aol.com",
        "gmail.com",
        "gmx.de",
        "gmx.net",
        "googlemail.com",
        "hotmail.com",
        "icloud.com",
        "live.com",
        "mail.com",
        "outlook.com",
        "proton.me",
        "protonmail.com",
        "yahoo.com",
        "yandex.ru",
    }
)
# Dropped from the end of a company name, so "Globex Analytics Inc." and "globex analytics" are one company.
LEGAL_SUFFIXES = frozenset(
    {"ab", "ag", "bv", "co", "corp", "corporation", "gmbh", "inc", "incorporated", "llc", "ltd", "limited", "nv", "plc"}
)
_EMAIL = re.compile(r"^[^@\s]+@(?P<domain>[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,})$")

SAMPLE_INPUTS: dict[str, dict] = {
    "hot: software enterprise, CEO contact": {
        "company_name": "Initech Software Group",
        "contact_email": "ceo@initech-software.com",
    },
    "warm: mid-market analytics, named contact": {
        "company_name": "Globex Analytics",
        "contact_email": "jane.doe@globex-analytics.com",
    },
    "hot on return: same company again, remembered": {
        "company_name": "Globex Analytics Inc.",
        "contact_email": "sam.lee@globex-analytics.com",
    },
    "hot: fintech, head of operations (the gate decides, no forced review)": {
        "company_name": "Umbrella Payments",
        "contact_email": "head.ops@umbrellapay.io",
    },
    "warm: logistics, named contact": {
        "company_name": "Vandelay Logistics",
        "contact_email": "art.vandelay@vandelay-logistics.com",
    },
    "cold: small bakery, shared mailbox": {"company_name": "Bob's Bakery", "contact_email": "info@bobsbakery.com"},
    "invalid: free-mail address": {"company_name": "Stark Industries", "contact_email": "tony.stark@gmail.com"},
    "invalid: malformed email, no company": {"company_name": " ", "contact_email": "not-an-email"},
}


class LeadInputs(BaseModel):
    company_name: str = Field(max_length=200, description="The company the lead works for.")
    contact_email: str = Field(max_length=254, description="The contact's business email address.")


class CompanyProfile(BaseModel):
    name: str
    domain: str = ""
    industry: str = ""
    size_band: Literal["small", "mid_market", "enterprise"] = "mid_market"
    employees: int = Field(default=0, ge=0)
    description: str = ""
    confidence: float = Field(default=0.0, ge=0, le=1)


class ContactProfile(BaseModel):
    email: str
    full_name: str = ""
    title: str = ""
    seniority: Literal["executive", "manager", "staff", "mailbox"] = "staff"
    confidence: float = Field(default=0.0, ge=0, le=1)


class LeadScore(BaseModel):
    score: int = Field(ge=0, le=100)
    reasons: list[str] = Field(default_factory=list)
    confidence: float = Field(default=0.0, ge=0, le=1)


class OutreachEmail(BaseModel):
    # An address is at most 254 characters (RFC 5321); the other bounds are far above a short first email.
    to: str = Field(max_length=254, json_schema_extra={"widget": "text"})
    subject: str = Field(max_length=300, json_schema_extra={"widget": "text"})
    body: str = Field(max_length=10_000)
    confidence: float = Field(default=0.0, ge=0, le=1)


class KnownCompany(BaseModel):
    """What the latest completed run for the same company concluded."""

    run_id: str
    concluded_at: str
    stage: str
    score: int
    contact_email: str
    company: CompanyProfile


class LeadState(BaseModel):
    id: str = ""
    company_name: str = ""
    contact_email: str = ""
    company_key: str = ""
    domain: str = ""
    stage: str = "received"
    errors: list[str] = []
    known: KnownCompany | None = None
    company: CompanyProfile | None = None
    contact: ContactProfile | None = None
    score: LeadScore | None = None
    outreach: OutreachEmail | None = None
    reviewed: bool = False


def company_key(name: str) -> str:
    """The company name as memory keys it: lower case, words only, legal form dropped."""
    words = re.findall(r"[^\W_]+", name.casefold())
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def lead_errors(company_name: str, contact_email: str) -> list[str]:
    """Why the lead cannot be enriched, one message per problem, each naming its field (email in lower case)."""
    errors = []
    if not company_key(company_name):
        errors.append("company_name: required")
    match = _EMAIL.match(contact_email)
    if match is None:
        errors.append(f"contact_email: '{contact_email}' is not an email address")
    elif match["domain"] in FREE_MAIL_DOMAINS:
        errors.append(f"contact_email: {match['domain']} is a free-mail domain; a business address is needed")
    return errors


# --------------------------------------------------------------------------- crews


# Agents are built per crew run (``agent(**ANALYST)``) so each picks up the LLM configured at that moment.
ANALYST = {
    "role": "Company research analyst",
    "goal": "Build an accurate profile of each company that contacts us",
    "backstory": "You profile B2B prospects from public information and trust what earlier research established.",
}
SALES_RESEARCHER = {
    "role": "Sales development researcher",
    "goal": "Find out who a lead is and how senior they are",
    "backstory": "You read email addresses and company pages to tell decision makers from shared mailboxes.",
}
SCORER = {
    "role": "Lead qualification specialist",
    "goal": "Score how likely a lead is to become a customer",
    "backstory": "Our best customers are software and financial-services firms of mid-market size or larger.",
}
COPYWRITER = {
    "role": "Outreach copywriter",
    "goal": "Write a short, personal first email that earns a reply",
    "backstory": "You write plain, specific emails of under 120 words and never overpromise.",
}


def _known_json(known: KnownCompany | None) -> str:
    return known.model_dump_json() if known else "none"


def company_crew(company_name: str, domain: str, known: KnownCompany | None) -> CompanyProfile:
    profile = task(
        "Profile the company below.\n"
        "Company: {company_name}\n"
        "Email domain: {domain}\n"
        "Known from earlier runs: {known}\n\n"
        "Give its industry, size band (small, mid_market or enterprise), approximate employees and a one-line "
        "description. Facts known from earlier runs stand unless you have clear evidence they changed.",
        "The company profile with your confidence between 0 and 1.",
        agent(**ANALYST),
        CompanyProfile,
    )
    inputs = {"company_name": company_name, "domain": domain, "known": _known_json(known)}
    return run_crew([profile], CompanyProfile, inputs)


def contact_crew(contact_email: str, company: CompanyProfile) -> ContactProfile:
    profile = task(
        "Identify the contact below.\n"
        "Email: {contact_email}\n"
        "Company profile: {company}\n\n"
        "Give their full name and title where the address reveals them, and their seniority: executive, manager, "
        "staff, or mailbox for a shared address such as info@ or sales@.",
        "The contact profile with your confidence between 0 and 1.",
        agent(**SALES_RESEARCHER),
        ContactProfile,
    )
    return run_crew([profile], ContactProfile, {"contact_email": contact_email, "company": company.model_dump_json()})


def score_crew(company: CompanyProfile, contact: ContactProfile, known: KnownCompany | None) -> LeadScore:
    score = task(
        "Score this lead from 0 to 100.\n"
        "Company profile: {company}\n"
        "Contact profile: {contact}\n"
        "Known from earlier runs: {known}\n\n"
        "Industry fit and company size count most, then the contact's seniority; a shared mailbox is worth little. "
        "A company that comes back to us after an earlier contact is more likely to buy. Give one reason per factor.",
        "The score, the reasons behind it and your confidence between 0 and 1.",
        agent(**SCORER),
        LeadScore,
    )
    inputs = {"company": company.model_dump_json(), "contact": contact.model_dump_json(), "known": _known_json(known)}
    return run_crew([score], LeadScore, inputs)


def outreach_crew(
    company: CompanyProfile, contact: ContactProfile, score: LeadScore, known: KnownCompany | None
) -> OutreachEmail:
    email = task(
        "Draft a first outreach email to this lead.\n"
        "Company profile: {company}\n"
        "Contact profile: {contact}\n"
        "Lead score: {score}\n"
        "Known from earlier runs: {known}\n\n"
        "Address the contact by name when known, refer to their company's situation, and acknowledge an earlier "
        "contact if there was one. End with one concrete next step.",
        "The email: recipient, subject, body, and your confidence between 0 and 1 that it can be sent unchanged.",
        agent(**COPYWRITER),
        OutreachEmail,
    )
    inputs = {
        "company": company.model_dump_json(),
        "contact": contact.model_dump_json(),
        "score": score.model_dump_json(),
        "known": _known_json(known),
    }
    return run_crew([email], OutreachEmail, inputs)


# --------------------------------------------------------------------------- flow


@register_flow(
    name=FLOW_NAME,
    title="Lead enrichment",
    inputs=LeadInputs,
    output_types=[OUTPUT_TYPE],
    review_reasons={"executive_contact": "First email to an executive"},
)
@persist()
class LeadEnrichmentFlow(Flow[LeadState]):
    """Validate, enrich and score a lead; hot leads get an outreach email a person approves."""

    @start()
    def receive_lead(self) -> dict:
        self.state.company_name = self.state.company_name.strip()
        self.state.contact_email = self.state.contact_email.strip().lower()
        self.state.company_key = company_key(self.state.company_name)
        self.state.domain = self.state.contact_email.rpartition("@")[2] if "@" in self.state.contact_email else ""
        return {"company_key": self.state.company_key, "domain": self.state.domain}

    @router(receive_lead, emit=["valid", "invalid"])
    def validate_lead(self) -> str:
        self.state.errors = lead_errors(self.state.company_name, self.state.contact_email)
        return "invalid" if self.state.errors else "valid"

    @listen("invalid")
    def reject_invalid(self) -> dict:
        self.state.stage = "invalid"
        # No company_key in the result: an unenriched lead teaches later runs nothing.
        return {
            "stage": "invalid",
            "company_name": self.state.company_name,
            "contact_email": self.state.contact_email,
            "errors": self.state.errors,
        }

    @listen("valid")
    def recall_company(self) -> dict | None:
        # Memory is recall of earlier runs' results rather than CrewAI's
        # built-in Memory: that needs an embedding model and an LLM pass per
        # save, and keeps its vectors on the worker's disk, while workers here
        # share nothing but the database. Completed results are already shared,
        # reviewed where the flow asked for review, and readable on the run page.
        earlier = latest_completed_run(flow_name=FLOW_NAME, result_key="company_key", value=self.state.company_key)
        if earlier is None:
            return None
        result = earlier.result
        self.state.known = KnownCompany(
            run_id=str(earlier.id),
            concluded_at=earlier.finished_at.isoformat() if earlier.finished_at else "",
            stage=result["stage"],
            score=result["score"]["score"],
            contact_email=result["contact"]["email"],
            company=result["company"],
        )
        return self.state.known.model_dump(mode="json")

    @listen(recall_company)
    def enrich_company(self) -> dict:
        self.state.company = company_crew(self.state.company_name, self.state.domain, self.state.known)
        self.state.stage = "enriched"
        return self.state.company.model_dump(mode="json")

    @listen(enrich_company)
    def enrich_contact(self) -> dict:
        self.state.contact = contact_crew(self.state.contact_email, self.state.company)
        return self.state.contact.model_dump(mode="json")

    @listen(enrich_contact)
    def score_lead(self) -> dict:
        self.state.score = score_crew(self.state.company, self.state.contact, self.state.known)
        self.state.stage = "scored"
        return self.state.score.model_dump(mode="json")

    @router(score_lead, emit=["hot_lead", "warm_lead", "cold_lead"])
    def classify_lead(self) -> str:
        score = self.state.score.score
        if score >= HOT_SCORE:
            return "hot_lead"
        return "warm_lead" if score >= WARM_SCORE else "cold_lead"

    @listen("cold_lead")
    def archive(self) -> dict:
        self.state.stage = "archived"
        return self._conclusion()

    @listen("warm_lead")
    def nurture(self) -> dict:
        self.state.stage = "nurture"
        return self._conclusion()

    @listen("hot_lead")
    def draft_outreach(self) -> dict:
        self.state.outreach = outreach_crew(self.state.company, self.state.contact, self.state.score, self.state.known)
        self.state.stage = "outreach_drafted"
        return self.state.outreach.model_dump(mode="json")

    @router(draft_outreach, emit=["human_review", "auto_approved"])
    def gate_outreach(self) -> str:
        # Outreach starts fully reviewed like every new output type; once a
        # manager lowers the threshold, an email to an executive still goes to
        # a person, because a bad first email to a decision maker costs the deal.
        executive = self.state.contact.seniority == "executive"
        return gate(
            OUTPUT_TYPE,
            self.state.outreach.confidence,
            force_review=executive,
            reason="executive_contact" if executive else None,
        )

    @listen("human_review")
    @human_review(output_type=OUTPUT_TYPE, schema=OutreachEmail, message="Approve, edit or reject this first email.")
    def review_outreach(self) -> OutreachEmail:
        return self.state.outreach

    @router(review_outreach, emit=["approved", "rejected"])
    def after_review(self, result: HumanFeedbackResult) -> str:
        decision = review_decision(result, OutreachEmail)
        self.state.reviewed = True
        if decision.outcome == "approved":
            self.state.outreach = decision.output  # with the reviewer's edits
        return decision.outcome

    @listen(or_("approved", "auto_approved"))
    def outreach_ready(self) -> dict:
        self.state.stage = "outreach_ready"
        return {**self._conclusion(), "outreach": self.state.outreach.model_dump(mode="json")}

    @listen("rejected")
    def outreach_rejected(self) -> dict:
        self.state.stage = "outreach_rejected"
        return {**self._conclusion(), "rejected_outreach": self.state.outreach.model_dump(mode="json")}

    def _conclusion(self) -> dict:
        """The result of an enriched lead: what the next run for this company will recall."""
        return {
            "stage": self.state.stage,
            "company_key": self.state.company_key,
            "company": self.state.company.model_dump(mode="json"),
            "contact": self.state.contact.model_dump(mode="json"),
            "score": self.state.score.model_dump(mode="json"),
            "reviewed": self.state.reviewed,
            "recalled_from": self.state.known.run_id if self.state.known else None,
        }


# Teach the offline demo model to answer the lead crews (see flows/leads_demo.py).
register_responder(CompanyProfile, demo_company)
register_responder(ContactProfile, demo_contact)
register_responder(LeadScore, demo_score)
register_responder(OutreachEmail, demo_outreach)
# A first email is told apart by whom it goes to and what it says it is about.
register_summary(OUTPUT_TYPE, [SummaryField("to", "To"), SummaryField("subject", "Subject")])
