"""Keeps a step from taking its worker down: what it raises beyond `Exception` fails the run instead.

`exit()`, `sys.exit()`, a KeyboardInterrupt or any other BaseException passes
CrewAI's `except Exception`; asyncio re-raises SystemExit and KeyboardInterrupt
out of its event loop, and django-q2's worker catches only `Exception`, so its
process exits. The run then stays running until its lease runs out, and the
next worker to take it dies the same way. Each step is therefore wrapped: such
an exception becomes a `StepAbortedError`, an ordinary exception that fails the
run with a message naming it and the step, and the worker takes its next task.

Not every BaseException comes from the step. django-q2 stops a task past its
timeout with `TimeoutException` (a SystemExit) raised by a SIGALRM handler in
the main thread, wherever it is; asyncio cancels tasks with CancelledError; a
Ctrl-C raises KeyboardInterrupt in the main thread of an inline run. Those stop
the process, and go on up (see `stops_the_process`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import signal
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django_q.exceptions import TimeoutException

from reviewconsole.engine.context import Execution, in_event_loop, is_async_step
from reviewconsole.engine.events import record_step_start


class StepAbortedError(Exception):
    """A step raised a BaseException that is not an Exception (SystemExit, KeyboardInterrupt, ...)."""

    def __init__(self, error: BaseException, step: str) -> None:
        super().__init__(f"{error!r} raised in step '{step}'")
        self.step = step


def stops_the_process(error: BaseException) -> bool:
    """Whether `error` may be this process being stopped, rather than something a flow raised of its own accord."""
    if isinstance(error, TimeoutException):
        return True
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        # How the event loop stops a coroutine; in a sync step's thread, only the step can have raised it.
        return in_event_loop()
    if isinstance(error, KeyboardInterrupt):
        # A signal is handled in the main thread only, and only a Python handler raises it (Ctrl-C's default
        # one); django-q2 workers ignore SIGINT, so in them a step raised it.
        return threading.current_thread() is threading.main_thread() and callable(signal.getsignal(signal.SIGINT))
    return False


@contextmanager
def _contained(step: str) -> Iterator[None]:
    try:
        yield
    except BaseException as error:
        if isinstance(error, Exception) or stops_the_process(error):
            raise
        raise StepAbortedError(error, step) from error


async def _contained_coroutine(step: str, coroutine: Coroutine[Any, Any, Any]) -> Any:
    with _contained(step):
        return await coroutine


def _record_start_closing(execution: Execution, step: str) -> None:
    try:
        record_step_start(execution, step)
    finally:
        connections.close_all()  # this thread's, which a pool thread would otherwise keep open


def _guarded(step: str, bound: Any, execution: Execution) -> Any:
    if is_async_step(bound):

        @functools.wraps(bound)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            if execution.after_worker_death:
                # The ORM is not for the event loop's thread; asyncio.to_thread carries the context over.
                await asyncio.to_thread(_record_start_closing, execution, step)
            with _contained(step):
                return await bound(*args, **kwargs)

        return guarded_async

    @functools.wraps(bound)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if execution.after_worker_death:
            record_step_start(execution, step)
        with _contained(step):
            result = bound(*args, **kwargs)
        # A sync step may return a coroutine, which CrewAI then awaits on the event loop.
        return _contained_coroutine(step, result) if inspect.iscoroutine(result) else result

    return guarded


def install(flow: Any, execution: Execution) -> None:
    """Wrap each step of this flow instance; install before other wrappers, so theirs see the guarded step."""
    for step, bound in list(flow._methods.items()):
        flow._methods[step] = _guarded(str(step), bound, execution)
