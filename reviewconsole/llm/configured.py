"""The model flows run on, as the operator configured it: ``LLM_MODEL``, ``LLM_BASE_URL``, ``LLM_API_KEY``.

``build_llm()`` is the one place the console gets its model from, so switching
the whole console between the built-in demo model and a real provider is a
matter of setting ``LLM_MODEL`` (plus ``LLM_BASE_URL`` / ``LLM_API_KEY``).
"""

from __future__ import annotations

from typing import Any

from crewai import LLM
from crewai.hooks.contexts import ExecutionStartContext
from crewai.llms.base_llm import BaseLLM

from reviewconsole.llm.demo_model import DEMO_MODEL_LABEL, DEMO_MODEL_NAME, DemoLLM
from reviewconsole.llm.setting import read_setting

DEFAULT_LLM_MODEL = DEMO_MODEL_NAME


def configured_model_id() -> str:
    """The id of the model ``LLM_MODEL`` names: "demo" for the demo model (also when unset), else as given."""
    model = str(read_setting("LLM_MODEL", DEFAULT_LLM_MODEL)).strip()
    return DEMO_MODEL_NAME if not model or model.lower() == DEMO_MODEL_NAME else model


def build_llm() -> BaseLLM | LLM:
    """The LLM flows run on, from ``LLM_MODEL`` / ``LLM_BASE_URL`` / ``LLM_API_KEY``.

    Read from Django settings, else the environment. ``LLM_MODEL`` defaults to
    "demo" so a fresh checkout runs offline; any other value is handed to
    ``crewai.LLM`` unchanged (e.g. "openai/gpt-4o-mini", "ollama/llama3.1"), and
    unset base URL / key are left out so the provider's own defaults and
    environment variables still apply.
    """
    model = configured_model_id()
    if model == DEMO_MODEL_NAME:
        return DemoLLM()
    kwargs: dict[str, Any] = {"model": model}
    base_url = read_setting("LLM_BASE_URL")
    api_key = read_setting("LLM_API_KEY")
    if base_url:
        kwargs["base_url"] = str(base_url)
    if api_key:
        kwargs["api_key"] = str(api_key)
    return LLM(**kwargs)


def llm_label(llm: BaseLLM) -> str:
    """Name to show in the UI: "demo model" for the demo, the model id otherwise."""
    if isinstance(llm, DemoLLM):
        return DEMO_MODEL_LABEL
    return str(llm.model)


def make_configured_model_the_default() -> None:
    """Make the model CrewAI picks when nobody names one the configured model, in this process.

    CrewAI resolves every model left unnamed through ``create_llm(None)``: an
    Agent without ``llm=``, a hierarchical crew's manager without
    ``manager_llm=``, ``@human_feedback`` without ``llm=``. That reads
    ``MODEL`` / ``OPENAI_MODEL_NAME`` and the provider's own key variable, so
    it cannot give the demo model (not a CrewAI provider) nor pass
    ``LLM_BASE_URL`` / ``LLM_API_KEY``; setting ``OPENAI_API_KEY`` process-wide
    instead would also hand the key to agents pinned to another OpenAI model
    and to CrewAI's default embedder. No public hook replaces that default
    (``llm_overlay`` maps model strings to model strings, and would also
    remap agents pinned with ``llm=``), so this replaces the one private
    function ``create_llm(None)`` calls. An explicit ``llm=`` never reaches it.

    ``Crew(planning=True)`` without ``planning_llm`` plans on a model CrewAI
    names in its code ("gpt-5.4-mini"), not through ``create_llm(None)``; a
    kickoff hook, CrewAI's public ``EXECUTION_START`` point (it runs before
    planning), gives such a crew the configured model instead.
    Idempotent; called at worker bootstrap.
    """
    from crewai.hooks.dispatch import InterceptionPoint, get_hooks, register
    from crewai.utilities import llm_utils

    llm_utils._llm_via_environment_or_fallback = build_llm
    if plan_on_configured_model not in get_hooks(InterceptionPoint.EXECUTION_START):
        register(InterceptionPoint.EXECUTION_START, plan_on_configured_model)


def plan_on_configured_model(ctx: ExecutionStartContext) -> None:
    """Kickoff hook: a crew that plans without a ``planning_llm`` plans on the configured model."""
    crew = ctx.crew
    if crew is not None and getattr(crew, "planning", False) and crew.planning_llm is None:
        crew.planning_llm = build_llm()
