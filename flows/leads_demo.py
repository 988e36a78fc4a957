"""How the offline demo model answers the lead crews, so every branch follows from the lead itself.

flows/leads.py registers one responder per crew answer (``demo_company`` for
``CompanyProfile`` and so on).

- Company: industry from words in the name ("Software", "Bank", "Bakery", …),
  size from its form ("Group", "Holdings" → enterprise; a possessive or a shop
  word → small). A company known from an earlier run keeps what that run found.
- Contact: seniority from the address: ceo@ is an executive, head.ops@ a
  manager, jane.doe@ staff, info@ a shared mailbox.
- Score: 10 + industry fit + size + seniority, plus 15 for a company that
  comes back after an earlier run, so a warm lead can return hot.
"""

from __future__ import annotations

import re
from typing import Any

from flows.content_demo import labelled, labelled_json

# (industry, name-word prefixes that reveal it, score points for fit)
INDUSTRIES = (
    ("Software", ("software", "tech", "labs", "data", "cloud", "analytics", "digital", "systems", "ai"), 25),
    ("Financial services", ("bank", "capital", "financ", "insur", "invest", "pay"), 25),
    ("Healthcare", ("health", "pharma", "clinic", "medic", "bio"), 15),
    ("Logistics", ("logistic", "freight", "shipping", "transport"), 10),
    ("Retail and food", ("bakery", "cafe", "shop", "store", "retail", "market"), 0),
)
OTHER_INDUSTRY = ("Professional services", 5)
ENTERPRISE_WORDS = frozenset({"group", "holdings", "international", "global", "corporation", "plc"})
SMALL_WORDS = frozenset({"bakery", "cafe", "shop", "studio", "store", "s"})  # "s": the possessive in "Bob's"
SIZES = {"enterprise": (5000, 20), "mid_market": (250, 15), "small": (12, 0)}
EXECUTIVE_WORDS = frozenset({"ceo", "cto", "cfo", "coo", "cmo", "cio", "founder", "owner", "president"})
MANAGER_WORDS = frozenset({"head", "director", "vp", "manager", "lead"})
MAILBOXES = frozenset({"admin", "contact", "hello", "info", "marketing", "office", "sales", "support", "team"})
SENIORITY_POINTS = {"executive": 30, "manager": 20, "staff": 10, "mailbox": 0}
RETURNING_POINTS = 15


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _industry(words: list[str]) -> tuple[str, int]:
    # Short prefixes ("ai") must match a whole word, or "aircraft" would be a software company.
    for industry, prefixes, points in INDUSTRIES:
        if any(w == p or (len(p) > 2 and w.startswith(p)) for w in words for p in prefixes):
            return industry, points
    return OTHER_INDUSTRY


def _size_band(words: list[str]) -> str:
    if ENTERPRISE_WORDS & set(words):
        return "enterprise"
    return "small" if SMALL_WORDS & set(words) else "mid_market"


def demo_company(prompt_text: str) -> dict[str, Any]:
    known = labelled_json(prompt_text, "Known from earlier runs")
    if known is not None:
        return {**known["company"], "confidence": 0.95}
    name = labelled(prompt_text, "Company")
    words = _words(name)
    industry, _ = _industry(words)
    size_band = _size_band(words)
    return {
        "name": name,
        "domain": labelled(prompt_text, "Email domain"),
        "industry": industry,
        "size_band": size_band,
        "employees": SIZES[size_band][0],
        "description": f"{name} is a {size_band.replace('_', '-')} {industry.lower()} company.",
        "confidence": 0.8 if industry != OTHER_INDUSTRY[0] else 0.6,
    }


def demo_contact(prompt_text: str) -> dict[str, Any]:
    email = labelled(prompt_text, "Email")
    local = email.partition("@")[0]
    words = _words(local)
    name_words = [word for word in words if word not in EXECUTIVE_WORDS | MANAGER_WORDS]
    if local in MAILBOXES:
        seniority, title, name_words = "mailbox", "Shared mailbox", []
    elif EXECUTIVE_WORDS & set(words):
        seniority, title = "executive", next(w for w in words if w in EXECUTIVE_WORDS).upper()
    elif MANAGER_WORDS & set(words):
        seniority, title = "manager", " ".join(words).title()
    else:
        seniority, title = "staff", ""
    return {
        "email": email,
        "full_name": " ".join(word.title() for word in name_words) if seniority == "staff" else "",
        "title": title,
        "seniority": seniority,
        "confidence": 0.9 if seniority in {"executive", "mailbox"} else 0.7,
    }


def demo_score(prompt_text: str) -> dict[str, Any]:
    company = labelled_json(prompt_text, "Company profile") or {}
    contact = labelled_json(prompt_text, "Contact profile") or {}
    known = labelled_json(prompt_text, "Known from earlier runs")
    industry = company.get("industry", "")
    fit = next((points for name, _, points in INDUSTRIES if name == industry), OTHER_INDUSTRY[1])
    size_band = company.get("size_band", "mid_market")
    seniority = contact.get("seniority", "staff")
    reasons = [
        f"industry {industry or 'unknown'}: +{fit}",
        f"size {size_band}: +{SIZES[size_band][1]}",
        f"contact seniority {seniority}: +{SENIORITY_POINTS[seniority]}",
    ]
    score = 10 + fit + SIZES[size_band][1] + SENIORITY_POINTS[seniority]
    if known is not None:
        reasons.append(f"returning company (earlier run ended {known['stage']}): +{RETURNING_POINTS}")
        score += RETURNING_POINTS
    return {"score": min(score, 100), "reasons": reasons, "confidence": 0.8}


def demo_outreach(prompt_text: str) -> dict[str, Any]:
    company = labelled_json(prompt_text, "Company profile") or {}
    contact = labelled_json(prompt_text, "Contact profile") or {}
    known = labelled_json(prompt_text, "Known from earlier runs")
    name = company.get("name", "your company")
    greeting = f"Hi {contact['full_name'].split()[0]}," if contact.get("full_name") else "Hello,"
    opening = (
        f"Good to hear from {name} again; we last spoke with your team about this earlier."
        if known is not None
        else f"I noticed {name} is growing in {company.get('industry', 'your market').lower()}."
    )
    body = (
        f"{greeting}\n\n{opening} Teams like yours use us to review AI output before it reaches customers.\n\n"
        "Would a 20-minute call next week be useful?\n\nBest regards"
    )
    return {
        "to": contact.get("email", ""),
        "subject": f"{name}: reviewing AI output with confidence",
        "body": body,
        # Without a name the email reads generic, so the copywriter is less sure it can go unchanged.
        "confidence": 0.88 if contact.get("full_name") else 0.72,
    }
