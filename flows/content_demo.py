"""How the offline demo model answers the content crews, so every branch follows from the topic.

flows/content.py registers ``demo_research`` for ``ResearchOutput`` and
``demo_article`` for ``ArticleDraft``.

- A topic naming a well-known subject ("remote work", "renewable energy", …) is
  researched well enough at once.
- Any other topic of two or more words is narrow: the first pass is thin, one
  deeper pass makes it sufficient.
- A one-word topic is too vague to research into citable specifics: each pass
  adds a little, but it stays below the bar, so the flow writes on thin research.

Figures are derived from a hash of the topic: the same topic always gets the
same article, and different topics get different numbers.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

WELL_KNOWN_SUBJECTS = (
    "artificial intelligence",
    "ai",
    "climate",
    "cloud computing",
    "cybersecurity",
    "education",
    "electric vehicles",
    "healthcare",
    "machine learning",
    "marketing",
    "productivity",
    "remote work",
    "renewable energy",
    "social media",
    "supply chain",
)

# (confidence, statistics, sources) of the first pass, and what each deeper pass adds.
_START = {"broad": (0.85, 4, 4), "narrow": (0.55, 2, 2), "vague": (0.3, 1, 1)}
_GAIN = {"broad": (0.05, 1, 1), "narrow": (0.2, 1, 1), "vague": (0.1, 1, 1)}


def labelled(prompt_text: str, label: str) -> str:
    """The text after the first ``Label:`` line of the prompt, or "" (the flows' task descriptions use them)."""
    match = re.search(rf"^{re.escape(label)}:[ \t]*(.*)$", prompt_text, re.MULTILINE)
    return match.group(1).strip() if match else ""


def labelled_json(prompt_text: str, label: str) -> dict[str, Any] | None:
    """A ``Label: {json}`` line as a dict; None when absent or not an object (e.g. "none")."""
    try:
        value = json.loads(labelled(prompt_text, label))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def breadth(topic: str) -> str:
    """How much there is to find about the topic: "broad", "narrow" or "vague"."""
    words = re.findall(r"[a-z]+", topic.lower())
    if len(words) <= 1:
        return "vague"
    text = " ".join(words)
    if any(re.search(rf"\b{subject}\b", text) for subject in WELL_KNOWN_SUBJECTS):
        return "broad"
    return "narrow"


def _figure(topic: str, index: int) -> int:
    digest = hashlib.sha256(f"{topic.lower()}:{index}".encode()).digest()
    return 12 + digest[0] % 76


def _slug(topic: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-") or "topic"


def demo_research(prompt_text: str) -> dict[str, Any]:
    topic = labelled(prompt_text, "Topic")
    research_pass = int(labelled(prompt_text, "Research pass") or 0)
    kind = breadth(topic)
    confidence, stats, sources = (
        start + gain * research_pass for start, gain in zip(_START[kind], _GAIN[kind], strict=True)
    )
    return {
        "summary": f"{topic}: {stats} figures from {sources} sources after {research_pass + 1} research pass(es).",
        "key_stats": [
            f"{_figure(topic, i)}% of surveyed organisations report {topic.lower()} effects (study {i + 1})"
            for i in range(stats)
        ],
        "sources": [f"https://example.org/{_slug(topic)}/report-{i + 1}" for i in range(sources)],
        "confidence": round(min(confidence, 0.95), 2),
    }


def _first_draft(topic: str, research: dict[str, Any]) -> dict[str, Any]:
    paragraphs = [research.get("summary", "")] + [f"Consider this: {stat}." for stat in research.get("key_stats", [])]
    return {
        "title": f"{topic}: what the evidence says",
        "standfirst": f"A short explainer on {topic.lower()}, using {len(research.get('sources', []))} sources.",
        "body": "\n\n".join(paragraphs),
        "sources": list(research.get("sources", [])),
        "confidence": research.get("confidence", 0.5),
    }


def demo_article(prompt_text: str) -> dict[str, Any]:
    """Write, rewrite or edit, depending on which inputs the task hands over."""
    topic = labelled(prompt_text, "Topic")
    research = labelled_json(prompt_text, "Research") or {}
    notes = labelled(prompt_text, "Reviewer notes")
    rejected = labelled_json(prompt_text, "Draft")
    if rejected is not None and notes:
        return {**rejected, "body": f"{rejected['body']}\n\nRevised to address the review: {notes}"}
    to_edit = labelled_json(prompt_text, "Draft to edit")
    if to_edit is not None:
        # The editor is as sure as the research allows, a little surer for having checked the figures.
        body = re.sub(r"[ \t]+", " ", to_edit["body"]).strip()
        return {**to_edit, "body": body, "confidence": round(min(research.get("confidence", 0.5) + 0.05, 0.95), 2)}
    return _first_draft(topic, research)
