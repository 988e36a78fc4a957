"""Response headers, redirects and refusals that every page needs."""

import math
from collections.abc import Callable
from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.http import HttpResponseClientRedirect

# LLM output is shown on these pages; no inline script or style may run, so an
# injected `<script>` or `onerror=` does nothing even if escaping ever failed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("X-Content-Type-Options", "nosniff")
        response.setdefault("Referrer-Policy", "same-origin")
        return response


class HtmxLoginRedirectMiddleware:
    """Turn a login redirect for an HTMX request into HX-Redirect.

    A plain 302 would be followed by htmx and the login page swapped into
    whatever fragment was being refreshed.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            getattr(request, "htmx", False)
            and response.status_code == 302
            and response["Location"].startswith(settings.LOGIN_URL)
        ):
            return HttpResponseClientRedirect(response["Location"])
        return response


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check for logins that come with a request: the login page and the admin's.

    A login without one (a script, the test client's `login()`) has no client address to count by, and axes
    would refuse it outright; it goes on to the password check like any other.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> AbstractBaseUser | None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def login_locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """django-axes' answer to a login refused after too many failures (AXES_LOCKOUT_CALLABLE).

    429 with Retry-After: every refused attempt counts as a failure and starts the cool-off again, so the
    wait is a whole cool-off from now.
    """
    seconds = settings.LOGIN_COOLOFF_SECONDS
    context = {"retry_minutes": math.ceil(seconds / 60), "failure_limit": settings.LOGIN_FAILURE_LIMIT}
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
