"""How the demo model uses an agent's tools: which tool, with which arguments, and what it returned.

CrewAI offers a task's tools to a model in one of two ways, and the demo model
answers in the same way it was asked:
- native function calling (the model says it supports it): the tools arrive as
  OpenAI function schemas in ``call(tools=...)``, the model answers with tool
  calls, and the result comes back as a ``role: tool`` message;
- the ReAct text protocol: the system prompt lists each tool's name, argument
  schema and description, the model answers ``Action:`` / ``Action Input:``, and
  the result comes back after ``Observation:``.

The demo model calls the first tool offered, once, with arguments built from
its schema (``example_data``), then answers from the result: deterministic,
and an agent finishes in two model calls instead of looping to ``max_iter``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crewai.utilities.message_utils import message_content_text

from reviewconsole.llm.example_data import example_from_schema

if TYPE_CHECKING:
    from crewai.utilities.types import LLMMessage

_REACT_TOOL = re.compile(r"^Tool Name: (?P<name>.+)\nTool Arguments: ", re.MULTILINE)
_REACT_DESCRIPTION = re.compile(
    r"\s*Tool Description: (?P<description>.*?)(?=\n\nTool Name: |\n\nIMPORTANT|\Z)", re.DOTALL
)
_OBSERVATION = re.compile(r"(?:^|\n)Observation:\s*(?P<result>.*)", re.DOTALL)
# CrewAI's delegation tools (a hierarchical crew's manager) name the coworkers that exist only in their
# description ("... one of the following coworkers: Researcher, Writer\n..."); any other name fails the call.
_COWORKERS = re.compile(r"following coworkers: (?P<names>[^\n]+)")
# What a task or CrewAI's converter asks for when the answer must follow a schema but no response_model is passed.
_SCHEMA_REQUEST = "according to the following OpenAPI schema: "


@dataclass(frozen=True)
class OfferedTool:
    """A tool as the model sees it: its name, the JSON schema of its arguments, and its description."""

    name: str
    parameters: dict[str, Any]
    description: str


def native_tools(tools: list[dict[str, Any]] | None) -> list[OfferedTool]:
    """The tools of a native function-calling request (OpenAI function schemas), in order."""
    offered = []
    for tool in tools or []:
        function = tool.get("function", tool) if isinstance(tool, dict) else {}
        if isinstance(function, dict) and function.get("name"):
            offered.append(
                OfferedTool(
                    name=str(function["name"]),
                    parameters=dict(function.get("parameters") or {}),
                    description=str(function.get("description") or ""),
                )
            )
    return offered


def react_tools(messages: list[LLMMessage]) -> list[OfferedTool]:
    """The tools a ReAct system prompt lists ("Tool Name: … Tool Arguments: {…} Tool Description: …")."""
    offered = []
    decoder = json.JSONDecoder()
    for message in messages:
        if message.get("role") != "system":
            continue
        text = message_content_text(message)
        for match in _REACT_TOOL.finditer(text):
            try:
                parameters, end = decoder.raw_decode(text, match.end())
            except json.JSONDecodeError:
                continue
            described = _REACT_DESCRIPTION.match(text, end)
            description = described.group("description").strip() if described else ""
            offered.append(
                OfferedTool(name=match.group("name").strip(), parameters=parameters, description=description)
            )
    return offered


def tool_result(messages: list[LLMMessage]) -> str | None:
    """The latest tool result in the conversation, or None while no tool has run.

    The system prompt is skipped: its ReAct instructions contain the word
    "Observation:" themselves.
    """
    for message in reversed(messages):
        role = message.get("role")
        if role == "tool":
            return message_content_text(message).strip()
        if role in ("assistant", "user"):
            found = _OBSERVATION.findall(message_content_text(message))
            if found:
                return found[-1].strip()
    return None


def arguments_for(tool: OfferedTool, prompt: str) -> dict[str, Any]:
    """Arguments that fit ``tool``'s schema, strings quoting the prompt's first line; a coworker that exists."""
    arguments = example_from_schema(tool.parameters, prompt) if tool.parameters else {}
    if not isinstance(arguments, dict):
        arguments = {}
    coworkers = _COWORKERS.search(tool.description)
    if coworkers and "coworker" in arguments:
        arguments["coworker"] = coworkers.group("names").split(",")[0].strip()
    return arguments


def react_action(tool: OfferedTool, arguments: dict[str, Any]) -> str:
    """The ReAct text that makes CrewAI run ``tool`` with ``arguments``."""
    return (
        f"Thought: I should use the {tool.name} tool\n"
        f"Action: {tool.name}\n"
        f"Action Input: {json.dumps(arguments, sort_keys=True)}"
    )


def native_call(tool: OfferedTool, arguments: dict[str, Any], index: int) -> dict[str, Any]:
    """One OpenAI-style tool call, the form CrewAI's native tool loop executes."""
    return {
        "id": f"call_demo_{index}",
        "type": "function",
        "function": {"name": tool.name, "arguments": json.dumps(arguments, sort_keys=True)},
    }


def requested_schema(prompt: str) -> dict[str, Any] | None:
    """The JSON schema a prompt asks the answer to follow, when the schema is in the text rather than a model.

    CrewAI does this for a typed task whose agent has tools (the task prompt)
    and in its converter (a system prompt wrapping the schema as
    ``{"type": "json_schema", "json_schema": {"schema": …}}``).
    """
    start = prompt.rfind(_SCHEMA_REQUEST)
    if start < 0:
        return None
    try:
        schema, _ = json.JSONDecoder().raw_decode(prompt, start + len(_SCHEMA_REQUEST))
    except json.JSONDecodeError:
        return None
    if not isinstance(schema, dict):
        return None
    wrapped = schema.get("json_schema")
    if isinstance(wrapped, dict) and isinstance(wrapped.get("schema"), dict):
        return wrapped["schema"]
    return schema
