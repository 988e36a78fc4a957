"""The JSON API at /api/v1/: authentication, error shapes and the routers of each app.

Clients authenticate with `Authorization: Bearer <token>` (see `manage.py
create_api_token`) or, from the browser, with the console's login session,
in which case unsafe methods need the CSRF token like any form post.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer, SessionAuth

from reviewconsole.engine.registry import UnknownFlowError
from reviewconsole.engine.tokens import (
    ApiTokenLockedOut,
    api_token_failure_record,
    api_token_lockout_check,
    api_token_user,
)


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`; an address that sends too many wrong tokens gets 429 for a while."""

    def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        # REMOTE_ADDR, not X-Forwarded-For, which any client can write.
        client_ip = request.META.get("REMOTE_ADDR", "")
        api_token_lockout_check(client_ip=client_ip)
        user = api_token_user(token)
        if user is None:
            api_token_failure_record(client_ip=client_ip)
        return user


class LoginSessionAuth(SessionAuth):
    """The console's login session. CSRF is checked once a user is known, so anonymous requests get 401, not 403."""

    def __call__(self, request: HttpRequest) -> Any:
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


api = NinjaAPI(
    title="Review Console API",
    version="1",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=[BearerTokenAuth(), LoginSessionAuth()],
)


def _detail(request: HttpRequest, detail: Any, status: int) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    # A path that does not parse (a malformed UUID) names no resource.
    if any(tuple(error.get("loc", ()))[:1] == ("path",) for error in exc.errors):
        return _detail(request, "Not found", 404)
    return _detail(request, exc.errors, 422)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja reports an unparsable body as "Cannot parse request body" and keeps
    # the decoder's message (which says where the JSON breaks) as the cause.
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


@api.exception_handler(ObjectDoesNotExist)
def does_not_exist(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
    return _detail(request, "Not found", 404)


@api.exception_handler(PermissionDenied)
def permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _detail(request, str(exc) or "Permission denied", 403)


api.add_router("/", "reviewconsole.engine.api.router")
api.add_router("/reviews", "reviewconsole.reviews.api.router")
api.add_router("/autonomy", "reviewconsole.autonomy.api.router")
