"""Which run and review item a log line is about, and the JSON log format (LOG_FORMAT=json).

The task runner and the views bind the ids into context variables (`log_ids`); a filter on the console handler
copies them onto every record logged inside, whoever logs it (our code, CrewAI, django-q2). Context variables,
not thread-locals: CrewAI runs flow steps in threads with a copy of the caller's context, so a step's lines
carry its run's id too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

run_id_var: ContextVar[str] = ContextVar("log_run_id", default="")
item_id_var: ContextVar[str] = ContextVar("log_item_id", default="")


@contextmanager
def log_ids(*, run_id: object = None, item_id: object = None) -> Iterator[None]:
    """Tag the lines logged inside with the run and/or review item (None leaves an outer binding as it is)."""
    tokens = [
        (var, var.set(str(value))) for var, value in ((run_id_var, run_id), (item_id_var, item_id)) if value is not None
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextIdsFilter(logging.Filter):
    """Puts `run_id` and `item_id` on each record (when bound), and `ids`, their text form for the text format."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = {"run_id": run_id_var.get(), "item_id": item_id_var.get()}
        text = ""
        for name, value in ids.items():
            if value and not getattr(record, name, ""):
                setattr(record, name, value)
            if getattr(record, name, ""):
                text += f" {name}={getattr(record, name)}"
        record.ids = text
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids when known, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name in ("run_id", "item_id"):
            if getattr(record, name, ""):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a message argument that JSON cannot hold is still logged, as its text.
        return json.dumps(line, default=str)


class LogIdsMiddleware:
    """Tags what a view logs with the run or review item its URL names (`run_id`, `item_id`, pages and API)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with ExitStack() as stack:
            request._log_ids_stack = stack  # type: ignore[attr-defined]
            return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids = {name: kwargs[name] for name in ("run_id", "item_id") if name in kwargs}
        stack = getattr(request, "_log_ids_stack", None)
        if ids and stack is not None:
            stack.enter_context(log_ids(**ids))
