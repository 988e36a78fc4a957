"""Response headers and redirects that every page needs."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
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
