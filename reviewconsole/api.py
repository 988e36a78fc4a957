"""The JSON API at /api/v1/: authentication, error shapes and the routers of each app.

Clients authenticate with `Authorization: Bearer <token>` (see `manage.py
create_api_token`) or, from the browser, with the console's login session,
in which case unsafe methods need the CSRF token like any form post. The
OpenAPI document and its docs page need the same credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.docs import Swagger
from ninja.openapi.schema import OpenAPISchema
from ninja.security import HttpBearer, SessionAuth

from reviewconsole.engine.registry import FlowUnavailableError, UnknownFlowError
from reviewconsole.engine.tokens import (
    ApiTokenLockedOut,
    api_token_failure_record,
    api_token_lockout_check,
    api_token_user,
)
from reviewconsole.inputs import StrictJSONParser, UnsafeInputError
from reviewconsole.openapi import ErrorOut


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`; an address that sends too many wrong tokens gets 429 for a while.

    Only wrong tokens are held back: a right one from a locked-out address still works (see engine/tokens.py).
    """

    def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        user = api_token_user(token)
        if user is None:
            # REMOTE_ADDR, not X-Forwarded-For, which any client can write.
            client_ip = request.META.get("REMOTE_ADDR", "")
            api_token_lockout_check(client_ip=client_ip)
            api_token_failure_record(client_ip=client_ip)
        return user


class LoginSessionAuth(SessionAuth):
    """The console's login session. CSRF is checked once a user is known, so anonymous requests get 401, not 403."""

    def __call__(self, request: HttpRequest) -> Any:
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


# Who the OpenAPI document is being built for. Ninja's view passes no request to `get_openapi_schema`, and
# the document names the flows, of which a user limited to some output types may see only theirs.
_document_reader: ContextVar[Any] = ContextVar("document_reader", default=None)


def signed_in(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The docs page and the OpenAPI document are for API users: a login session or a valid bearer token."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            reader = request.user if request.user.is_authenticated else BearerTokenAuth()(request)
        except ApiTokenLockedOut as locked_out:
            return token_locked_out(request, locked_out)
        if reader is not None:
            token = _document_reader.set(reader)
            try:
                return view(request, *args, **kwargs)
            finally:
                _document_reader.reset(token)
        if request.resolver_match and request.resolver_match.url_name == "openapi-view":
            return redirect_to_login(request.get_full_path())
        return _detail(request, "Log in or send a valid bearer token to read the API's description.", 401)

    return wrapper


# Every operation needs credentials, and the edge refuses unsafe input (a NUL in the URL or query, a JSON
# body that is malformed or holds NUL or non-finite numbers) before any operation runs.
SHARED_RESPONSES = {
    400: "A malformed JSON body, or a NUL character or non-finite number in the input; `detail` names where.",
    401: "No credentials, or an unknown, expired or inactive bearer token.",
    429: "Too many wrong bearer tokens from this address: wait the `Retry-After` seconds.",
}


class ConsoleAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """Ninja's document, plus the shared error responses and each flow's run-start operation."""
        # Loads the flows (and CrewAI) only when the document is asked for.
        from reviewconsole.engine.api import document_flow_runs

        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        # Every router documents its own error statuses with ErrorOut, so ninja has put it in the components.
        error_ref = {"$ref": f"#/components/schemas/{ErrorOut.__name__}"}
        for path_item in schema["paths"].values():
            for operation in path_item.values():
                for status, description in SHARED_RESPONSES.items():
                    operation["responses"].setdefault(
                        status, {"description": description, "content": {"application/json": {"schema": error_ref}}}
                    )
        document_flow_runs(schema, reader=_document_reader.get())
        return schema


api = ConsoleAPI(
    title="Review Console API",
    version="1",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
    # Without deep links: swagger-ui draws each operation's path as a link inside the button that opens the
    # operation, a control within a control that a keyboard or screen reader cannot use apart (axe-core's
    # nested-interactive). Opening an operation then no longer changes the address. Without syntax colours:
    # their theme's numbers and strings are below 4.5:1 on its dark background, and are set inline, where
    # static/css/swagger-a11y.css cannot reach them; the examples stay white on dark grey.
    docs=Swagger(settings={"deepLinking": False, "syntaxHighlight": False}),
    docs_decorator=signed_in,
    auth=[BearerTokenAuth(), LoginSessionAuth()],
    parser=StrictJSONParser(),
)


def _detail(request: HttpRequest, detail: Any, status: int) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    # A path that does not parse (a malformed UUID) names no resource.
    if any(tuple(error.get("loc", ()))[:1] == ("path",) for error in exc.errors):
        return _detail(request, "Not found", 404)
    return _detail(request, [_error_entry(error) for error in exc.errors], 422)


def _error_entry(error: dict[str, Any]) -> dict[str, Any]:
    """An error in the documented {loc, msg, type} shape."""
    if "loc" in error:
        return error
    # Ninja's cursor pagination reports a bad cursor as {"cursor": "Invalid Cursor"}.
    [(name, message)] = error.items()
    return {"loc": ["query", name], "msg": str(message), "type": "value_error"}


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja reports an unparsable body as "Cannot parse request body" and keeps
    # the decoder's message (which says where the JSON breaks) as the cause.
    if isinstance(exc.__cause__, UnsafeInputError):
        return _detail(request, [exc.__cause__.as_error("body")], exc.status_code)
    if isinstance(exc.__cause__, ValueError):
        return _detail(request, f"Malformed JSON body: {exc.__cause__}", exc.status_code)
    return _detail(request, str(exc), exc.status_code)


@api.exception_handler(ApiTokenLockedOut)
def token_locked_out(request: HttpRequest, exc: ApiTokenLockedOut) -> HttpResponse:
    response = _detail(request, str(exc), 429)
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(UnknownFlowError)
def unknown_flow(request: HttpRequest, exc: UnknownFlowError) -> HttpResponse:
    return _detail(request, str(exc), 404)


@api.exception_handler(FlowUnavailableError)
def flow_unavailable(request: HttpRequest, exc: FlowUnavailableError) -> HttpResponse:
    return _detail(request, str(exc), 409)


@api.exception_handler(ObjectDoesNotExist)
def does_not_exist(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
    return _detail(request, "Not found", 404)


@api.exception_handler(PermissionDenied)
def permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _detail(request, str(exc) or "Permission denied", 403)


api.add_router("/", "reviewconsole.engine.api.router")
api.add_router("/", "reviewconsole.reviews.api.runs_router")
api.add_router("/reviews", "reviewconsole.reviews.api.router")
api.add_router("/autonomy", "reviewconsole.autonomy.api.router")
