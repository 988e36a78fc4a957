"""The call path every offline model shares: CrewAI's LLM events, hooks and usage, without a network.

A custom BaseLLM emits no LLM events unless it calls CrewAI's ``_emit_call_*``
helpers; doing so here lets runs on an offline model produce the same event
stream (call started / completed, token usage) as runs on a real provider.
Subclasses (the demo model, the decision model) only decide the answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from crewai.events.types.llm_events import LLMCallType
from crewai.hooks.dispatch import HookAborted
from crewai.llms.base_llm import BaseLLM, LLMCallBlockedError, llm_call_context
from crewai.utilities.message_utils import message_content_text
from pydantic import BaseModel

if TYPE_CHECKING:
    from crewai.agents.agent_builder.base_agent import BaseAgent
    from crewai.task import Task
    from crewai.tools.base_tool import BaseTool
    from crewai.utilities.types import LLMMessage

# Offline models have no real window; a large one keeps CrewAI's context-window
# summarisation (an extra LLM round trip) out of their runs.
_OFFLINE_CONTEXT_WINDOW = 128_000

ToolCalls = list[dict[str, Any]]
"""OpenAI-style tool calls (``id``, ``type``, ``function.name``, ``function.arguments``)."""


def prompt_text(messages: list[LLMMessage]) -> str:
    """Join the text of every message, in order: what a responder decides from."""
    return "\n\n".join(message_content_text(message) for message in messages)


def last_user_text(messages: list[LLMMessage]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_content_text(message)
    return message_content_text(messages[-1]) if messages else ""


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


class OfflineLLM(BaseLLM):
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
        tools: list[dict[str, Any]] | None,
    ) -> str | ToolCalls:
        """The answer text, or OpenAI-style tool calls when ``tools`` were offered natively."""
        raise NotImplementedError

    def _delay_seconds(self) -> float:
        return 0.0

    def supports_function_calling(self) -> bool:
        """False: agents then use the ReAct text protocol, which the offline models speak."""
        return False

    def get_context_window_size(self) -> int:
        return _OFFLINE_CONTEXT_WINDOW

    def get_input_tokens_count(
        self,
        messages: str | list[LLMMessage],
        tools: list[dict[str, BaseTool]] | None = None,
        response_model: type[BaseModel] | None = None,
    ) -> int:
        """Same word count as the reported usage, without BaseLLM's approximation warning."""
        if isinstance(messages, str):
            return _count_words(messages)
        return _count_words(prompt_text(messages))

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
    ) -> str | ToolCalls:
        """Answer ``messages`` offline; a JSON string when ``response_model`` is given, tool calls when asked."""
        with self._observed_call(messages, tools, callbacks, available_functions, from_task, from_agent) as formatted:
            delay = self._delay_seconds()
            if delay > 0:
                time.sleep(delay)
            return self._complete(formatted, tools, available_functions, from_task, from_agent, response_model)

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
    ) -> str | ToolCalls:
        """Async twin of ``call``; waits with ``asyncio.sleep`` so the loop stays free."""
        with self._observed_call(messages, tools, callbacks, available_functions, from_task, from_agent) as formatted:
            delay = self._delay_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            return self._complete(formatted, tools, available_functions, from_task, from_agent, response_model)

    def _complete(
        self,
        messages: list[LLMMessage],
        tools: list[dict[str, Any]] | None,
        available_functions: dict[str, Any] | None,
        from_task: Task | None,
        from_agent: BaseAgent | None,
        response_model: type[BaseModel] | None,
    ) -> str | ToolCalls:
        answer = self._answer(messages, response_model, from_agent, tools)
        if isinstance(answer, list):
            return self._tool_calls(messages, answer, available_functions, from_task, from_agent)
        usage = _usage(prompt_text(messages), answer)
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

    def _tool_calls(
        self,
        messages: list[LLMMessage],
        calls: ToolCalls,
        available_functions: dict[str, Any] | None,
        from_task: Task | None,
        from_agent: BaseAgent | None,
    ) -> str | ToolCalls:
        """Tool calls for the caller to run, or, when it passed the functions, the first one's result.

        The same contract as the native providers: an agent's tool loop passes no
        functions and executes the calls itself; a direct ``call(tools=…,
        available_functions=…)`` gets the tool run and its result back.
        """
        usage = _usage(prompt_text(messages), json.dumps(calls))
        self._track_token_usage_internal(usage)
        self._emit_call_completed_event(
            response=calls,
            call_type=LLMCallType.TOOL_CALL,
            from_task=from_task,
            from_agent=from_agent,
            messages=messages,
            usage=usage,
            finish_reason="tool_calls",
            response_id=f"{self.model}-{uuid.uuid4().hex[:12]}",
        )
        if not available_functions:
            return calls
        function = calls[0]["function"]
        result = self._handle_tool_execution(
            function_name=function["name"],
            function_args=json.loads(function["arguments"]),
            available_functions=available_functions,
            from_task=from_task,
            from_agent=from_agent,
        )
        return calls if result is None else str(result)
