"""Crew memory in the console: a crew with memory but no embedder fails at kickoff, saying what to set.

CrewAI's ``Crew(memory=True)`` embeds what it remembers with OpenAI's
``text-embedding-3-large`` unless the crew names an embedder. Without
``OPENAI_API_KEY`` every save then fails in a background thread and the crew
carries on: it remembers nothing, and nobody is told. No installed package
offers an embedder that loads without a download (chromadb's ONNX default
fetches its model on first use), so the console refuses such a crew when its
kickoff starts, through CrewAI's ``EXECUTION_START`` hook.
"""

from __future__ import annotations

import os
from typing import Any

from crewai.hooks.contexts import ExecutionStartContext
from crewai.hooks.dispatch import HookAborted, InterceptionPoint, get_hooks, register

MEMORY_DOCS = "https://docs.crewai.com/concepts/memory"


class MemoryWithoutEmbedderError(HookAborted):
    """A crew has memory, no embedder, and no key for CrewAI's default one."""


def check_crew_memory(ctx: ExecutionStartContext) -> None:
    """Abort a crew's kickoff when its memory would save nothing: no embedder named and no OpenAI key."""
    crew = ctx.crew
    memory: Any = getattr(crew, "_memory", None)
    if memory is None or crew is None or not _uses_default_embedder(memory):
        return
    if os.environ.get("OPENAI_API_KEY"):
        return
    name = crew.name or "crew"
    raise MemoryWithoutEmbedderError(
        f"Crew '{name}' has memory=True but no embedder, and CrewAI's default embedder (OpenAI "
        "text-embedding-3-large) needs OPENAI_API_KEY: its memory would save nothing. Set an embedder on the "
        'crew, e.g. Crew(..., memory=True, embedder={"provider": "ollama", "config": {"model_name": '
        '"nomic-embed-text"}}), or pass memory=Memory(embedder=...), or set OPENAI_API_KEY. '
        f"See {MEMORY_DOCS}",
        source="reviewconsole.crew_memory",
    )


def _uses_default_embedder(memory: Any) -> bool:
    """Whether a memory (or a scope or slice of one) falls back to CrewAI's default OpenAI embedder."""
    root = getattr(memory, "_memory", memory)  # MemoryScope and MemorySlice wrap a Memory
    embedder = getattr(root, "embedder", None)
    return embedder is None and getattr(root, "_embedder_instance", None) is None


def refuse_memory_without_embedder() -> None:
    """Register the kickoff check once per process."""
    if check_crew_memory not in get_hooks(InterceptionPoint.EXECUTION_START):
        register(InterceptionPoint.EXECUTION_START, check_crew_memory)
