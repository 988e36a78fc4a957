"""The one check every input passes at the edge: no NUL characters, no non-finite numbers.

PostgreSQL refuses NUL in text and jsonb, and JSON has no NaN or Infinity (Python's `json` reads them, and
1e309 as infinity, but the database and every other JSON reader refuse them). Such a value deep inside a run's
inputs or an edited output would only fail at the INSERT, as a 500, or worse, in a worker. So it is refused
where it enters: JSON bodies by the API's parser (`StrictJSONParser`), URLs, query strings and form posts by
`UnsafeInputMiddleware`, and JSON typed into a page by `json_loads`. Each refusal names where the value was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.parser import Parser

Loc = tuple[str | int, ...]

NUL_MESSAGE = "NUL characters (\\u0000) are not allowed"
NON_FINITE_MESSAGE = "Numbers must be finite: NaN, Infinity and out-of-range values like 1e309 are not allowed"


class UnsafeInputError(ValueError):
    """An input holding a NUL character or a non-finite number; `loc` says where (a JSON path or a parameter)."""

    def __init__(self, message: str, loc: Loc = ()) -> None:
        super().__init__(f"{message} (at {'.'.join(str(part) for part in loc) or 'the top level'})")
        self.message = message
        self.loc = loc

    def as_error(self, *prefix: str | int) -> dict[str, Any]:
        """The refusal in the shape of the API's validation errors."""
        return {"loc": [*prefix, *self.loc], "msg": self.message, "type": "value_error"}


def check_value(value: Any, loc: Loc = ()) -> None:
    """Raise UnsafeInputError for the first NUL character (in a string or a key) or non-finite float in `value`."""
    if isinstance(value, str):
        if "\x00" in value:
            raise UnsafeInputError(NUL_MESSAGE, loc)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UnsafeInputError(NON_FINITE_MESSAGE, loc)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                raise UnsafeInputError(NUL_MESSAGE, (*loc, key))
            check_value(item, (*loc, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_value(item, (*loc, index))


def json_loads(text: str | bytes) -> Any:
    """`json.loads` that refuses NaN/Infinity tokens, overflowing numbers and NUL characters, naming the path.

    Raises json.JSONDecodeError for malformed JSON and UnsafeInputError (both ValueErrors) for unsafe values.
    """
    # Python reads NaN and Infinity tokens, and literals too large for a float (1e309) as infinity: the walk
    # finds them all as non-finite floats, with their path.
    value = json.loads(text)
    check_value(value)
    return value


class StrictJSONParser(Parser):
    """The API's parser: JSON bodies through `json_loads`.

    Ninja turns an exception from `parse_body` into a 400 whose cause is kept; `reviewconsole.api` answers an
    UnsafeInputError cause with its location.
    """

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        return json_loads(request.body)


def _request_values(request: HttpRequest) -> Iterator[tuple[Loc, str]]:
    yield ("path",), request.path_info
    for location, data in (("query", request.GET), ("form", request.POST)):
        for key, values in data.lists():
            yield (location, key), key
            for value in values:
                yield (location, key), value


class UnsafeInputMiddleware:
    """Answer 400, naming the parameter, to a URL, query string or form post that holds a NUL character.

    Runs before any view, so no view, form or query ever sees one. Django's form fields already refuse
    non-finite numbers; JSON bodies are the API parser's job.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for loc, value in _request_values(request):
            try:
                check_value(value, loc)
            except UnsafeInputError as error:
                return self._refuse(request, error)
        return self.get_response(request)

    @staticmethod
    def _refuse(request: HttpRequest, error: UnsafeInputError) -> HttpResponse:
        if request.path_info.startswith("/api/"):
            return JsonResponse({"detail": [error.as_error()]}, status=400)
        return HttpResponse(f"Bad request: {error}", status=400, content_type="text/plain; charset=utf-8")
