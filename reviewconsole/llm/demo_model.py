"""The demo model: an offline, deterministic stand-in for a real one (model name "demo").

It lets the console be demonstrated and tested end to end on a machine without
internet: same prompt, same answer, and the same CrewAI event stream as a
provider (see ``offline.OfflineLLM``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from reviewconsole.llm.demo_tools import (
    arguments_for,
    native_call,
    native_tools,
    react_action,
    react_tools,
    requested_schema,
    tool_result,
)
from reviewconsole.llm.example_data import example_from_model, example_from_schema, first_line
from reviewconsole.llm.offline import OfflineLLM, ToolCalls, last_user_text, prompt_text
from reviewconsole.llm.responders import DEMO_RESPONDERS, Responder, register_responder
from reviewconsole.llm.setting import read_setting

if TYPE_CHECKING:
    from crewai.agents.agent_builder.base_agent import BaseAgent
    from crewai.utilities.types import LLMMessage

DEMO_MODEL_NAME = "demo"
DEMO_MODEL_LABEL = "demo model"


class DemoLLM(OfflineLLM):
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

    When a task gives the agent tools, the first answer calls the first tool
    with arguments built from its schema, and the next one answers from the
    tool's result (see ``demo_tools``). A prompt that asks for an answer in a
    JSON schema (a typed task whose agent has tools, CrewAI's converter) gets
    JSON that follows it.
    """

    model: str = DEMO_MODEL_NAME
    provider: str = "demo"
    delay_ms: int | None = Field(default=None, ge=0, description="Overrides DEMO_LLM_DELAY_MS when set.")
    function_calling: bool = Field(
        default=False, description="Whether agents offer it tools natively (True) or in ReAct text (False)."
    )

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
        raw = self.delay_ms if self.delay_ms is not None else read_setting("DEMO_LLM_DELAY_MS", 0)
        try:
            milliseconds = float(raw)
        except (TypeError, ValueError):
            milliseconds = 0.0
        return max(milliseconds, 0.0) / 1000.0

    def supports_function_calling(self) -> bool:
        """``function_calling``: agents then offer tools natively, else through the ReAct text protocol."""
        return self.function_calling

    def _answer(
        self,
        messages: list[LLMMessage],
        response_model: type[BaseModel] | None,
        from_agent: BaseAgent | None,
        tools: list[dict[str, Any]] | None,
    ) -> str | ToolCalls:
        prompt = prompt_text(messages)
        user_text = last_user_text(messages)
        result = tool_result(messages)
        if result is None:
            call = self._tool_call(messages, tools, user_text)
            if call is not None:
                return call
        # After a tool ran, the answer is built from what it returned.
        source = user_text if result is None else result
        react = tools is None and (from_agent is not None or "Final Answer:" in prompt)
        if response_model is not None:
            return self._structured_answer(response_model, prompt, source)
        schema = requested_schema(prompt)
        if schema is not None:
            text = json.dumps(example_from_schema(schema, source))
        elif result is not None:
            text = result
        else:
            text = f"Demo answer to: {first_line(user_text)}"
        if react:
            return f"Thought: I now know the final answer\nFinal Answer: {text}"
        return text

    @staticmethod
    def _tool_call(
        messages: list[LLMMessage], tools: list[dict[str, Any]] | None, user_text: str
    ) -> str | ToolCalls | None:
        """A call of the first tool offered (natively in ``tools``, else in a ReAct prompt), or None if none is."""
        offered = native_tools(tools)
        if offered:
            tool = offered[0]
            return [native_call(tool, arguments_for(tool, user_text), index=len(messages))]
        offered = react_tools(messages)
        if offered:
            tool = offered[0]
            return react_action(tool, arguments_for(tool, user_text))
        return None

    @staticmethod
    def _structured_answer(response_model: type[BaseModel], prompt: str, user_text: str) -> str:
        # Responders see the whole conversation; the schema fallback quotes the
        # last user message (the task), not the agent's system preamble.
        responder = DEMO_RESPONDERS.get(response_model.__name__)
        if responder is None:
            data: Any = example_from_model(response_model, user_text)
        else:
            data = responder(prompt)
            if isinstance(data, BaseModel):
                data = data.model_dump(mode="json", by_alias=True)
        instance = response_model.model_validate(data)
        text = json.dumps(data, default=str)
        try:
            response_model.model_validate_json(text)
        except ValidationError:
            text = instance.model_dump_json(by_alias=True)
        return text
