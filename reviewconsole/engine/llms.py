"""LLM configuration for flow runs, and the offline models used for demos and tests.

``build_llm()`` is the one place a worker gets its model from, so switching the
whole console between the built-in demo model and a real provider is a matter of
setting ``LLM_MODEL`` (plus ``LLM_BASE_URL`` / ``LLM_API_KEY``).

``DemoLLM`` answers without any network access and always gives the same answer
to the same prompt. It still goes through CrewAI's LLM event helpers, so runs on
the demo model produce the same event stream (call started / completed, token
usage) as runs on a real provider and the console can be demonstrated and tested
end to end on a machine without internet.

``OutcomeLLM`` is a fixed decision maker for ``@human_feedback(emit=[...])``: it
turns any reviewer text into one chosen outcome, which makes routing tests exact.

This module imports CrewAI at module level; only worker code and tests import it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from crewai import LLM
from crewai.events.types.llm_events import LLMCallType
from crewai.hooks.dispatch import HookAborted
from crewai.llms.base_llm import BaseLLM, LLMCallBlockedError, llm_call_context
from crewai.utilities.message_utils import message_content_text
from pydantic import BaseModel, Field, ValidationError, model_validator

if TYPE_CHECKING:
    from crewai.agents.agent_builder.base_agent import BaseAgent
    from crewai.task import Task
    from crewai.tools.base_tool import BaseTool
    from crewai.utilities.types import LLMMessage

__all__ = [
    "DEFAULT_LLM_MODEL",
    "DEMO_MODEL_LABEL",
    "DEMO_MODEL_NAME",
    "DEMO_RESPONDERS",
    "OUTCOME_MODEL_NAME",
    "DemoLLM",
    "OutcomeLLM",
    "Responder",
    "build_llm",
    "example_from_model",
    "llm_label",
    "register_responder",
    "unregister_responder",
]

DEMO_MODEL_NAME = "demo"
DEMO_MODEL_LABEL = "demo model"
OUTCOME_MODEL_NAME = "decision"
DEFAULT_LLM_MODEL = DEMO_MODEL_NAME

# Demo models have no real window; a large one keeps CrewAI's context-window
# summarisation (an extra LLM round trip) out of demo runs.
_DEMO_CONTEXT_WINDOW = 128_000
_SNIPPET_CHARS = 80
_MAX_SCHEMA_DEPTH = 8
_FIXED_FORMATS: dict[str, str] = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00",
    "duration": "PT0S",
    "email": "demo@example.com",
    "idn-email": "demo@example.com",
    "uri": "https://example.com/demo",
    "url": "https://example.com/demo",
    "iri": "https://example.com/demo",
    "uri-reference": "https://example.com/demo",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "ipvanyaddress": "127.0.0.1",
    "ipvanyinterface": "127.0.0.1/32",
    "ipvanynetwork": "127.0.0.0/8",
}
_PATTERN_CANDIDATES = ("demo", "a", "A", "0", "1", "x", "Demo", "demo-1", "DEMO")

Responder = Callable[[str], dict[str, Any] | BaseModel]
"""Builds a demo answer for one response model from the whole prompt text."""

DEMO_RESPONDERS: dict[str, Responder] = {}
"""Response-model class name -> responder; consulted before the schema fallback."""


# --------------------------------------------------------------------------- settings


def _setting(name: str, default: Any = None) -> Any:
    """Read ``name`` from Django settings when they are usable, else the environment.

    Workers run with Django configured, and settings are the place operators
    override things; plain scripts and the CrewAI-only tests have no Django, so
    the environment is the fallback. Read on every use so a change (or a test's
    monkeypatch) applies to the next call without re-creating the LLM.
    """
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:  # pragma: no cover - Django is a hard dependency of the app
        settings = None
    if settings is not None:
        try:
            value = getattr(settings, name, None)
        except ImproperlyConfigured:
            value = None
        if value is not None and value != "":
            return value
    value = os.environ.get(name)
    if value is not None and value != "":
        return value
    return default


# --------------------------------------------------------------------------- helpers


def _prompt_text(messages: list[LLMMessage]) -> str:
    """Join the text of every message, in order: what a responder decides from."""
    return "\n\n".join(message_content_text(message) for message in messages)


def _last_user_text(messages: list[LLMMessage]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_content_text(message)
    return message_content_text(messages[-1]) if messages else ""


def _first_line(text: str) -> str:
    """First non-blank line, shortened at a word boundary: the answer's anchor."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            if len(line) <= _SNIPPET_CHARS:
                return line
            cut = line[:_SNIPPET_CHARS].rsplit(" ", 1)[0] or line[:_SNIPPET_CHARS]
            return cut.rstrip(" ,.;:") + "…"
    return "(empty prompt)"


def _count_words(text: str) -> int:
    return len(text.split())


def _usage(prompt_text: str, answer: str) -> dict[str, int]:
    """Token usage under the key names CrewAI's OpenAI provider reports.

    One "token" per whitespace-separated word: deterministic and close enough
    for the console's usage columns.
    """
    prompt_tokens = _count_words(prompt_text)
    completion_tokens = _count_words(answer)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _model_key(model: type[BaseModel] | str) -> str:
    return model if isinstance(model, str) else model.__name__


def register_responder(model: type[BaseModel] | str, fn: Responder) -> None:
    """Make ``DemoLLM`` answer ``model`` (a class or its name) with ``fn(prompt_text)``.

    Flows that branch on a structured answer need the demo model to give a
    meaningful one (a verdict that depends on the document, say) rather than
    the schema's first enum value; the flow module registers that logic here.
    """
    DEMO_RESPONDERS[_model_key(model)] = fn


def unregister_responder(model: type[BaseModel] | str) -> None:
    """Remove a responder; unknown names are ignored so cleanup never fails."""
    DEMO_RESPONDERS.pop(_model_key(model), None)


def llm_label(llm: BaseLLM) -> str:
    """Name to show in the UI: "demo model" for the demo, the model id otherwise."""
    if isinstance(llm, DemoLLM):
        return DEMO_MODEL_LABEL
    return str(llm.model)


# --------------------------------------------------------------------------- schema fallback


def example_from_model(model: type[BaseModel], prompt_text: str) -> dict[str, Any]:
    """Build a plausible, valid instance of ``model`` from its JSON schema.

    Used when no responder is registered, so any ``response_model`` a flow
    asks for gets an answer that validates: strings carry the field name and
    the first line of ``prompt_text``, numbers are 0 (or the nearest value the constraints allow;
    ``confidence`` floats are 0.9), booleans are false, lists are as short as
    allowed, enums take their first value and nested models recurse.

    Raises:
        ValueError: the generated data does not validate (custom validators,
            unsatisfiable patterns); register a responder for such models.
    """
    schema = model.model_json_schema()
    snippet = _first_line(prompt_text)
    data = _example(schema, root=schema, name="", snippet=snippet, depth=0)
    if not isinstance(data, dict):
        raise ValueError(f"{model.__name__} does not describe a JSON object")
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(
            f"DemoLLM could not build a valid {model.__name__} from its schema; "
            f"register a responder for it (reviewconsole.engine.llms.register_responder): {exc}"
        ) from exc
    return data


def _resolve_ref(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema["$ref"]
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    siblings = {key: value for key, value in schema.items() if key != "$ref"}
    return {**target, **siblings}


def _humanize(name: str) -> str:
    return re.sub(r"[_\-]+", " ", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)).strip().capitalize()


def _example(schema: Any, *, root: dict[str, Any], name: str, snippet: str, depth: int) -> Any:
    if not isinstance(schema, dict):
        return _text(name, snippet, {})
    if "$ref" in schema:
        if depth > _MAX_SCHEMA_DEPTH:
            return None
        return _example(_resolve_ref(schema, root), root=root, name=name, snippet=snippet, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [option for option in schema[key] if option.get("type") != "null"]
            if not options or depth > _MAX_SCHEMA_DEPTH:
                return None
            return _example(options[0], root=root, name=name, snippet=snippet, depth=depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
        for part in schema["allOf"]:
            merged.update(_resolve_ref(part, root) if "$ref" in part else part)
        return _example(merged, root=root, name=name, snippet=snippet, depth=depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"

    if kind == "object":
        if depth > _MAX_SCHEMA_DEPTH:
            return {}
        properties = schema.get("properties") or {}
        return {
            prop: _example(sub, root=root, name=prop, snippet=snippet, depth=depth + 1)
            for prop, sub in properties.items()
        }
    if kind == "array":
        return _array(schema, root=root, name=name, snippet=snippet, depth=depth)
    if kind == "string":
        return _string(schema, root=root, name=name, snippet=snippet, depth=depth)
    if kind in ("integer", "number"):
        return _number(schema, name=name, integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _text(name, snippet, schema)


def _array(schema: dict[str, Any], *, root: dict[str, Any], name: str, snippet: str, depth: int) -> list[Any]:
    singular = name[:-1] if name.endswith("s") else name
    prefix = schema.get("prefixItems")
    if prefix:
        return [
            _example(item, root=root, name=f"{singular} {index + 1}", snippet=snippet, depth=depth + 1)
            for index, item in enumerate(prefix)
        ]
    count = int(schema.get("minItems", 0))
    items = schema.get("items", {})
    return [
        _example(items, root=root, name=f"{singular} {index + 1}", snippet=snippet, depth=depth + 1)
        for index in range(count)
    ]


def _string(schema: dict[str, Any], *, root: dict[str, Any], name: str, snippet: str, depth: int) -> str:
    fmt = schema.get("format")
    if fmt in _FIXED_FORMATS:
        return _FIXED_FORMATS[fmt]
    if fmt == "uuid":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo:{name}:{snippet}"))
    if "contentSchema" in schema:  # pydantic ``Json[...]``: the string holds JSON
        inner = _example(schema["contentSchema"], root=root, name=name, snippet=snippet, depth=depth + 1)
        return json.dumps(inner)
    pattern = schema.get("pattern")
    if pattern:
        text = _text(name, snippet, schema)
        for candidate in (text, *_PATTERN_CANDIDATES):
            try:
                if re.search(pattern, candidate):
                    return _fit_length(candidate, schema)
            except re.error:
                break
        return _fit_length(text, schema)
    return _text(name, snippet, schema)


def _text(name: str, snippet: str, schema: dict[str, Any]) -> str:
    label = _humanize(name) if name else ""
    text = f"{label}: {snippet}" if label else snippet
    return _fit_length(text, schema)


def _fit_length(text: str, schema: dict[str, Any]) -> str:
    min_length = int(schema.get("minLength", 0))
    max_length = schema.get("maxLength")
    while len(text) < min_length:
        text = f"{text} {text}" if text else "demo"
    if max_length is not None:
        text = text[: int(max_length)]
    return text


def _number(schema: dict[str, Any], *, name: str, integer: bool) -> int | float:
    preferred: float = 0.9 if not integer and "confidence" in name.lower() else 0
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    ex_minimum, ex_maximum = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")

    def fits(value: float) -> bool:
        return (
            (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)
            and (ex_minimum is None or value > ex_minimum)
            and (ex_maximum is None or value < ex_maximum)
        )

    multiple = schema.get("multipleOf")
    if fits(preferred):
        value: float = preferred
    elif integer:
        low = math.ceil(minimum) if minimum is not None else None
        if ex_minimum is not None:
            low = max(low if low is not None else -math.inf, math.floor(ex_minimum) + 1)
        high = math.floor(maximum) if maximum is not None else None
        if ex_maximum is not None:
            high = min(high if high is not None else math.inf, math.ceil(ex_maximum) - 1)
        value = low if low is not None else (high if high is not None else 0)
    else:
        low = minimum if minimum is not None else ex_minimum
        high = maximum if maximum is not None else ex_maximum
        if low is not None and high is not None:
            value = (low + high) / 2
        elif low is not None:
            value = low if minimum is not None else low + 1
        else:
            value = high if maximum is not None else high - 1
    if multiple and value % multiple:
        value = math.ceil(value / multiple) * multiple
    return int(value) if integer else float(value)


# --------------------------------------------------------------------------- built-in responders


def _feedback_outcome(prompt_text: str) -> dict[str, Any]:
    """Demo collapse of reviewer text: the outcome the feedback names, else the first.

    Answers the ``FeedbackOutcome`` model CrewAI builds in ``_collapse_to_outcome``
    so a demo reviewer who types "rejected, needs sources" routes to
    ``rejected``. Words match an outcome when they share all but its last two
    letters ("approve" -> "approved").
    """
    match = re.search(r"Feedback:\s*(.*?)\n\s*\n\s*Possible outcomes:\s*([^\n]+)", prompt_text, re.DOTALL)
    if not match:
        raise ValueError("prompt is not a CrewAI human-feedback collapse prompt")
    feedback = match.group(1).lower()
    outcomes = [outcome.strip() for outcome in match.group(2).split(",") if outcome.strip()]
    words = re.findall(r"[a-z0-9_]+", feedback)
    best: str | None = None
    for outcome in outcomes:
        key = outcome.lower()
        stem = key[: max(4, len(key) - 2)]
        named = key in feedback or any(word.startswith(stem) for word in words)
        if named and (best is None or len(outcome) > len(best)):
            best = outcome
    if best is None:
        if not outcomes:
            raise ValueError("collapse prompt lists no outcomes")
        best = outcomes[0]
    return {"outcome": best}


register_responder("FeedbackOutcome", _feedback_outcome)


# --------------------------------------------------------------------------- offline LLM base


class _OfflineLLM(BaseLLM):
    """Shared call path of the offline models: CrewAI events, hooks, usage, no network.

    Mirrors the native providers (see ``OpenAICompletion.call``): a call scope
    for the call id, started event, before-hooks, answer, usage tracking,
    completed event, after-hooks; a failure emits the failed event and
    re-raises. Subclasses only decide the answer and the per-call delay.
    """

    def _answer(
        self,
        messages: list[LLMMessage],
        response_model: type[BaseModel] | None,
        from_agent: BaseAgent | None,
    ) -> str:
        raise NotImplementedError

    def _delay_seconds(self) -> float:
        return 0.0

    def supports_function_calling(self) -> bool:
        """False: agents then use the ReAct text protocol, which the offline models speak."""
        return False

    def get_context_window_size(self) -> int:
        return _DEMO_CONTEXT_WINDOW

    def get_input_tokens_count(
        self,
        messages: str | list[LLMMessage],
        tools: list[dict[str, BaseTool]] | None = None,
        response_model: type[BaseModel] | None = None,
    ) -> int:
        """Same word count as the reported usage, without BaseLLM's approximation warning."""
        if isinstance(messages, str):
            return _count_words(messages)
        return _count_words(_prompt_text(messages))

    @contextmanager
    def _observed_call(
        self,
        messages: str | list[LLMMessage],
        tools: list[dict[str, BaseTool]] | None,
        callbacks: list[Any] | None,
        available_functions: dict[str, Any] | None,
        from_task: Task | None,
        from_agent: BaseAgent | None,
    ) -> Iterator[list[LLMMessage]]:
        """Started event and hooks before the answer; denied or failed event if it raises."""
        with llm_call_context():
            self._emit_call_started_event(
                messages=messages,
                tools=tools,
                callbacks=callbacks,
                available_functions=available_functions,
                from_task=from_task,
                from_agent=from_agent,
            )
            try:
                formatted = self._format_messages(messages)
                self._invoke_before_llm_call_hooks(formatted, from_agent)
                yield formatted
            except (HookAborted, LLMCallBlockedError) as exc:
                self._emit_call_denied_event(exc, from_task, from_agent)
                raise
            except Exception as exc:
                self._emit_call_failed_event(
                    error=f"{self.model} call failed: {exc}", from_task=from_task, from_agent=from_agent
                )
                raise

    def call(
        self,
        messages: str | list[LLMMessage],
        tools: list[dict[str, BaseTool]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Task | None = None,
        from_agent: BaseAgent | None = None,
        response_model: type[BaseModel] | None = None,
        **kwargs: Any,
    ) -> str:
        """Answer ``messages`` offline; a JSON string when ``response_model`` is given."""
        with self._observed_call(messages, tools, callbacks, available_functions, from_task, from_agent) as formatted:
            delay = self._delay_seconds()
            if delay > 0:
                time.sleep(delay)
            return self._complete(formatted, from_task, from_agent, response_model)

    async def acall(
        self,
        messages: str | list[LLMMessage],
        tools: list[dict[str, BaseTool]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Task | None = None,
        from_agent: BaseAgent | None = None,
        response_model: type[BaseModel] | None = None,
        **kwargs: Any,
    ) -> str:
        """Async twin of ``call``; waits with ``asyncio.sleep`` so the loop stays free."""
        with self._observed_call(messages, tools, callbacks, available_functions, from_task, from_agent) as formatted:
            delay = self._delay_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            return self._complete(formatted, from_task, from_agent, response_model)

    def _complete(
        self,
        messages: list[LLMMessage],
        from_task: Task | None,
        from_agent: BaseAgent | None,
        response_model: type[BaseModel] | None,
    ) -> str:
        answer = self._answer(messages, response_model, from_agent)
        usage = _usage(_prompt_text(messages), answer)
        self._track_token_usage_internal(usage)
        response_id = f"{self.model}-{uuid.uuid4().hex[:12]}"
        if self._effective_stream():
            for chunk in re.findall(r"\S+\s*", answer):
                self._emit_stream_chunk_event(
                    chunk=chunk,
                    from_task=from_task,
                    from_agent=from_agent,
                    call_type=LLMCallType.LLM_CALL,
                    response_id=response_id,
                )
        self._emit_call_completed_event(
            response=answer,
            call_type=LLMCallType.LLM_CALL,
            from_task=from_task,
            from_agent=from_agent,
            messages=messages,
            usage=usage,
            finish_reason="stop",
            response_id=response_id,
        )
        if response_model is None:
            answer = self._invoke_after_llm_call_hooks(messages, answer, from_agent)
        return answer


# --------------------------------------------------------------------------- demo model


class DemoLLM(_OfflineLLM):
    """Offline, deterministic stand-in for a real model (model name "demo").

    Same prompt, same answer; no network. Emits CrewAI's LLM call events with a
    word-count token ``usage`` so the console's live view and usage figures
    work exactly as with a provider. Each call waits ``DEMO_LLM_DELAY_MS``
    (Django setting, else environment; ``delay_ms`` on the instance wins) so a
    demo shows runs in progress instead of finishing instantly.

    With ``response_model`` the answer is JSON that validates against it: from
    the responder registered for the model's class name, else built from its
    JSON schema (see ``example_from_model``). Without one it is text that
    quotes the first line of the last user message; inside an agent (or when
    the prompt asks for "Final Answer:") it uses the ReAct final-answer form so
    the agent finishes in one iteration.
    """

    model: str = DEMO_MODEL_NAME
    provider: str = "demo"
    delay_ms: int | None = Field(default=None, ge=0, description="Overrides DEMO_LLM_DELAY_MS when set.")

    @model_validator(mode="before")
    @classmethod
    def _demo_defaults(cls, data: Any) -> Any:
        # BaseLLM's own before-validator rejects a missing model name; defaults
        # must be in the input before it runs (subclass validators run first).
        if isinstance(data, dict):
            data = dict(data)
            data.setdefault("model", DEMO_MODEL_NAME)
            data.setdefault("provider", "demo")
        return data

    @classmethod
    def register_responder(cls, model: type[BaseModel] | str, fn: Responder) -> None:
        """Class-level spelling of the module's ``register_responder``."""
        register_responder(model, fn)

    def _delay_seconds(self) -> float:
        raw = self.delay_ms if self.delay_ms is not None else _setting("DEMO_LLM_DELAY_MS", 0)
        try:
            milliseconds = float(raw)
        except (TypeError, ValueError):
            milliseconds = 0.0
        return max(milliseconds, 0.0) / 1000.0

    def _answer(
        self,
        messages: list[LLMMessage],
        response_model: type[BaseModel] | None,
        from_agent: BaseAgent | None,
    ) -> str:
        prompt_text = _prompt_text(messages)
        user_text = _last_user_text(messages)
        if response_model is not None:
            return self._structured_answer(response_model, prompt_text, user_text)
        anchor = _first_line(user_text)
        text = f"Demo answer to: {anchor}"
        if from_agent is not None or "Final Answer:" in prompt_text:
            return f"Thought: I now know the final answer\nFinal Answer: {text}"
        return text

    @staticmethod
    def _structured_answer(response_model: type[BaseModel], prompt_text: str, user_text: str) -> str:
        # Responders see the whole conversation; the schema fallback quotes the
        # last user message (the task), not the agent's system preamble.
        responder = DEMO_RESPONDERS.get(response_model.__name__)
        if responder is None:
            data: Any = example_from_model(response_model, user_text)
        else:
            data = responder(prompt_text)
            if isinstance(data, BaseModel):
                data = data.model_dump(mode="json", by_alias=True)
        instance = response_model.model_validate(data)
        text = json.dumps(data, default=str)
        try:
            response_model.model_validate_json(text)
        except ValidationError:
            text = instance.model_dump_json(by_alias=True)
        return text


# --------------------------------------------------------------------------- outcome model


class OutcomeLLM(_OfflineLLM):
    """Always decides ``outcome``: answers ``{"outcome": "<outcome>"}`` (model "decision").

    For ``@human_feedback(emit=[...], llm=OutcomeLLM(outcome="approved"))``:
    CrewAI's ``_collapse_to_outcome`` asks the LLM to map the reviewer's text to
    one of the emitted outcomes with a response model that has an ``outcome``
    field; this model's fixed answer makes that routing exact. It makes no
    network call and does emit CrewAI's LLM call events (with word-count usage)
    like ``DemoLLM``, so the decision step is visible in a run's timeline.
    An outcome not in ``emit`` surfaces as CrewAI's ``HumanFeedbackCollapseError``.
    """

    model: str = OUTCOME_MODEL_NAME
    provider: str = "decision"
    outcome: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _outcome_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            data.setdefault("model", OUTCOME_MODEL_NAME)
            data.setdefault("provider", "decision")
        return data

    def _answer(
        self,
        messages: list[LLMMessage],
        response_model: type[BaseModel] | None,
        from_agent: BaseAgent | None,
    ) -> str:
        return json.dumps({"outcome": self.outcome})


# --------------------------------------------------------------------------- configuration


def build_llm() -> BaseLLM | LLM:
    """The LLM flows run on, from ``LLM_MODEL`` / ``LLM_BASE_URL`` / ``LLM_API_KEY``.

    Read from Django settings, else the environment. ``LLM_MODEL`` defaults to
    "demo" so a fresh checkout runs offline; any other value is handed to
    ``crewai.LLM`` unchanged (e.g. "openai/gpt-4o-mini", "ollama/llama3.1"), and
    unset base URL / key are left out so the provider's own defaults and
    environment variables still apply.
    """
    model = str(_setting("LLM_MODEL", DEFAULT_LLM_MODEL)).strip()
    if not model or model.lower() == DEMO_MODEL_NAME:
        return DemoLLM()
    kwargs: dict[str, Any] = {"model": model}
    base_url = _setting("LLM_BASE_URL")
    api_key = _setting("LLM_API_KEY")
    if base_url:
        kwargs["base_url"] = str(base_url)
    if api_key:
        kwargs["api_key"] = str(api_key)
    return LLM(**kwargs)
