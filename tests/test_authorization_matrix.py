"""Authorization matrix: every route the URL resolver knows, requested by every kind of caller.

`routes()` walks `get_resolver()`: the pages, the ninja API and the Django admin. Every route must be
classified, in MATRIX by route name or, for the admin, in ADMIN_RULES by pattern; a route missing from
both fails the test, naming it, so a new route fails until someone decides who may use it.

Each classified route is requested for each method its row declares, by each persona:

    anonymous, no role, scoped reviewer (invoice only), reviewer (every type), manager,
    scoped manager (invoice only)

Path parameters are filled with real objects of a seeded database: one of the scoped personas' type
(`mine`: an invoice run, item, policy...) and one of another type (`other`: an article draft's), so a
scope leak shows as a status that is not 404. A cell is one status, or a `(mine, other)` pair.

A row declares what a browser session (login cookie) gets. The other transports follow from it:
- a bearer token is not a page login: on a page its GET gets the anonymous column, and its unsafe
  request (which carries no CSRF token) 403; on the API it gets the row;
- an unsafe request from a session is sent with the CSRF token (it gets the row) and without it (403;
  401 on the API for anonymous). Pages are checked without the token as the manager only: that check
  is the middleware's, the same for everyone; the API's is each authentication's, checked for all.
- an htmx GET of a page gets the row, except that a login redirect becomes HX-Redirect.
Undeclared methods must answer 405 (the admin's are not probed: its views take GET and POST).

Every request runs in a savepoint that is rolled back, so no cell sees another's writes. A successful
answer to a scoped persona must not contain anything of another type (ids, the other flow's name and
inputs): that is how lists leak.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task

from reviewconsole.autonomy.models import GateDecision, Route
from reviewconsole.autonomy.services import policy_ensure
from reviewconsole.engine.documents import document_store
from reviewconsole.engine.models import ApiToken, Checkpoint, FlowRun, PendingFeedback, RunStatus, Step
from reviewconsole.engine.tokens import api_token_create
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus, SecondReview, SecondReviewStatus
from reviewconsole.reviews.roles import role_grant
from reviewconsole.simple_pdf import text_pdf
from tests.people import user_in_role

# ---------------------------------------------------------------- vocabulary

LOGIN = "login"  # 302 to the console's login page
ADMIN_LOGIN = "admin-login"  # 302 to the admin's login page
HX_LOGIN = "hx-login"  # 200 with HX-Redirect to the login page

PERSONAS = ("anonymous", "no_role", "scoped", "reviewer", "manager", "scoped_manager")
SCOPED_PERSONAS = ("scoped", "scoped_manager")
MINE, OTHER = "mine", "other"
MINE_TYPE, OTHER_TYPE = "invoice", "article_draft"
MINE_FLOW, OTHER_FLOW, UNTYPED_FLOW = "invoice_processing", "content_production", "counter"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
CSRF_SECRET = "a" * 32  # an unmasked secret: Django accepts it in the cookie and in X-CSRFToken

Cell = int | str | tuple[int | str, int | str]
Row = tuple[Cell, Cell, Cell, Cell, Cell, Cell]


def everyone(cell: Cell) -> Row:
    return (cell,) * len(PERSONAS)  # type: ignore[return-value]


# ---------------------------------------------------------------- the matrix
#
# route name: {method: (anonymous, no role, scoped reviewer, reviewer, manager, scoped manager)}
# Unsafe requests are sent with an empty form, or a JSON body from API_BODIES (else `{}`): a 4xx that is
# not 401, 403, 404 or 405 therefore means "let in, input refused".

MATRIX: dict[str, dict[str, Row]] = {
    # Accounts. Django's login form also takes PUT, as any FormView does.
    "login": {"GET": everyone(200), "POST": everyone(200), "PUT": everyone(200)},
    "logout": {"POST": everyone(LOGIN)},
    # Runs and flows: runs of a flow whose types a scoped persona may not all see are missing (404).
    "engine:home": {"GET": (LOGIN, 302, 302, 302, 302, 302)},
    "engine:run_list": {"GET": (LOGIN, 403, 200, 200, 200, 200)},
    "engine:run_detail": {"GET": (LOGIN, 403, (200, 404), 200, 200, (200, 404))},
    "engine:run_retry": {"POST": (LOGIN, 403, 403, 403, 302, (302, 404))},
    "engine:run_cancel": {"POST": (LOGIN, 403, 403, 403, 302, (302, 404))},
    "engine:flow_list": {"GET": (LOGIN, 403, 200, 200, 200, 200)},
    "engine:flow_start": {
        "GET": (LOGIN, 403, 403, 403, 200, (200, 404)),
        "POST": (LOGIN, 403, 403, 403, 200, (200, 404)),
    },
    # Review pages: items of a type one may not review are missing (404).
    "reviews:queue": {"GET": (LOGIN, 403, 200, 200, 200, 200)},
    "reviews:next": {"GET": (LOGIN, 403, 302, 302, 302, 302)},
    "reviews:bulk": {"POST": (LOGIN, 403, 302, 302, 302, 302)},
    "reviews:item": {"GET": (LOGIN, 403, (200, 404), 200, 200, (200, 404))},
    "reviews:decide": {"POST": (LOGIN, 403, (422, 404), 422, 422, (422, 404))},
    "reviews:release": {"POST": (LOGIN, 403, (302, 404), 302, 302, (302, 404))},
    # Undo of an item nobody decided: let in, nothing to undo (409).
    "reviews:undo": {"POST": (LOGIN, 403, (409, 404), 409, 409, (409, 404))},
    # Starting work on an item claims it (looking does not): like deciding, only for a type one may review.
    "reviews:claim": {"POST": (LOGIN, 403, (302, 404), 302, 302, (302, 404))},
    # One's own shortcut preference: anyone signed in; an empty form is refused (400).
    "reviews:shortcuts": {"POST": (LOGIN, 400, 400, 400, 400, 400)},
    # The live re-check of an edit: reads only, but like deciding, only for a type one may review.
    "reviews:check": {"POST": (LOGIN, 403, (200, 404), 200, 200, (200, 404))},
    # A page of the document an item's run was read from: seen exactly like the item.
    "reviews:document_page": {"GET": (LOGIN, 403, (200, 404), 200, 200, (200, 404))},
    # Second reviews: of items decided by `reviewer` (missing for them: a second review is someone else's), a
    # disagreement already given (409 to a POST). Adjudication and the reviewers page: managers, within scope.
    "reviews:second_review": {
        "GET": (LOGIN, 403, (200, 404), 404, 200, (200, 404)),
        "POST": (LOGIN, 403, (409, 404), 404, 409, (409, 404)),
    },
    "reviews:adjudications": {"GET": (LOGIN, 403, 403, 403, 200, 200)},
    "reviews:adjudicate": {"POST": (LOGIN, 403, 403, 403, 422, (422, 404))},
    "reviews:reviewers": {"GET": (LOGIN, 403, 403, 403, 200, 200)},
    # Autonomy dashboards: a type outside one's scope is refused before it is looked up (403 whether or
    # not it exists); only managers change policies.
    "autonomy:overview": {"GET": (LOGIN, 403, 200, 200, 200, 200)},
    "autonomy:type": {
        "GET": (LOGIN, 403, (200, 403), 200, 200, (200, 403)),
        "POST": (LOGIN, 403, 403, 403, 422, (422, 403)),
    },
    # Exports of a type's decisions: managers only, within their scope (refused before the type is looked up).
    "autonomy:export_audit": {"GET": (LOGIN, 403, 403, 403, 200, (200, 403))},
    "autonomy:export_dataset": {"GET": (LOGIN, 403, 403, 403, 200, (200, 403))},
    # Probes and the scraper: public, for no one in particular. Not ready here (no worker reports in a test);
    # the metrics are off without METRICS_TOKEN (tests/test_metrics.py checks the token).
    "healthz": {"GET": everyone(200)},
    "readyz": {"GET": everyone(503)},
    "metrics": {"GET": everyone(404)},
    # The JSON API.
    "api:api-root": {"GET": everyone(404)},
    # The API's description is for API users: a login session or a valid token.
    "api:openapi-json": {"GET": (401, 200, 200, 200, 200, 200)},
    "api:openapi-view": {"GET": (LOGIN, 200, 200, 200, 200, 200)},
    "api:flow_list": {"GET": (401, 403, 200, 200, 200, 200)},
    "api:flow_run_create": {"POST": (401, 403, 403, 403, 422, (422, 404))},
    "api:run_list": {"GET": (401, 403, 200, 200, 200, 200)},
    "api:run_detail": {"GET": (401, 403, (200, 404), 200, 200, (200, 404))},
    "api:review_list": {"GET": (401, 403, 200, 200, 200, 200)},
    "api:reason_list": {"GET": (401, 403, 200, 200, 200, 200)},
    "api:review_detail": {"GET": (401, 403, (200, 404), 200, 200, (200, 404))},
    "api:review_decide": {"POST": (401, 403, (200, 404), 200, 200, (200, 404))},
    "api:review_undo": {"POST": (401, 403, (409, 404), 409, 409, (409, 404))},
    "api:autonomy_detail": {"GET": (401, 403, (200, 403), 200, 200, (200, 403))},
    "api:autonomy_update": {"PATCH": (401, 403, 403, 403, 422, (422, 403))},
    # A version the type's flow never had: let in, refused.
    "api:autonomy_carry_over": {"POST": (401, 403, 403, 403, 422, (422, 403))},
    "api:autonomy_export_audit": {"GET": (401, 403, 403, 403, 200, (200, 403))},
    "api:autonomy_export_dataset": {"GET": (401, 403, 403, 403, 200, (200, 403))},
}

# Bodies that pass validation, so that the answer is the authorization's, not the body's (ninja checks a
# body before the endpoint runs).
API_BODIES: dict[str, dict[str, Any]] = {
    "api:review_decide": {"outcome": "approved"},
    "api:autonomy_carry_over": {"from_version": "matrix", "reason": "matrix"},
}

# Ninja's own read-only views answer any method as they answer GET: not probed for 405.
METHOD_BLIND = {"api:api-root", "api:openapi-json", "api:openapi-view"}


def staff(manager: Cell, scoped_manager: Cell | None = None) -> Row:
    """An admin row: everyone but staff (managers) is sent to the admin's login."""
    return (
        ADMIN_LOGIN,
        ADMIN_LOGIN,
        ADMIN_LOGIN,
        ADMIN_LOGIN,
        manager,
        manager if scoped_manager is None else scoped_manager,
    )


# The admin, by pattern (first match wins): only staff get in. Managers are staff; they see the runs and
# the autonomy models, the rows of their own types only (another type's row is missing: a redirect).
ADMIN_RULES: list[tuple[str, dict[str, Row]]] = [
    (r"^admin:login$", {"GET": (200, 200, 200, 200, 302, 302), "POST": everyone(200)}),
    (r"^admin:logout$", {"POST": (302, 302, 302, 302, LOGIN, LOGIN)}),
    (r"^admin:(index|app_list|password_change)$", {"GET": staff(200), "POST": staff(200)}),
    (r"^admin:(jsi18n|password_change_done)$", {"GET": staff(200), "POST": staff(405)}),
    # Asks for a model and field it is not given.
    (r"^admin:autocomplete$", {"GET": staff(403), "POST": staff(405)}),
    # No model here has a page of its own.
    (r"^admin:view_on_site$", {"GET": staff(404), "POST": staff(404)}),
    (r"^admin:engine_flowrun_changelist$", {"GET": staff(200), "POST": staff(200)}),
    # Runs and gate decisions are read-only in the admin: their change form refuses a POST.
    (r"^admin:(engine_flowrun|autonomy_gatedecision)_change$", {"GET": staff(200, (200, 302)), "POST": staff(403)}),
    (r"^admin:autonomy_\w+_changelist$", {"GET": staff(200), "POST": staff(200)}),
    (r"^admin:autonomy_autonomypolicy_add$", {"GET": staff(200), "POST": staff(200)}),
    (
        r"^admin:(engine_flowrun_history|autonomy_\w+_(change|history))$",
        {"GET": staff(200, (200, 302)), "POST": staff(200, (200, 302))},
    ),
    (r"^admin:", {"GET": staff(403), "POST": staff(403)}),
    # Unnamed: the catch-all, and an object's URL without /change/, which redirects there.
    (r"^admin/\(\?P<url>", {"GET": staff(404), "POST": staff(404)}),
    (r"^admin/", {"GET": staff(302), "POST": staff(302)}),
]

# ---------------------------------------------------------------- routes


@dataclass(frozen=True)
class RouteInfo:
    key: str  # "namespace:name", or the full pattern for an unnamed route
    route: str  # the full pattern, as ResolverMatch.route spells it
    callback: Any

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")

    @property
    def is_admin(self) -> bool:
        return self.route.startswith("admin/")


def _walk(patterns: list[Any], prefix: str = "", namespaces: tuple[str, ...] = ()) -> Iterator[RouteInfo]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            namespace = (pattern.namespace,) if pattern.namespace else ()
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), namespaces + namespace)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            key = ":".join((*namespaces, pattern.name)) if pattern.name else route
            yield RouteInfo(key=key, route=route, callback=pattern.callback)


def routes() -> list[RouteInfo]:
    return list(_walk(get_resolver().url_patterns))


def declared_methods(info: RouteInfo) -> dict[str, Row] | None:
    if info.key in MATRIX:
        return MATRIX[info.key]
    if info.is_admin:
        for pattern, rows in ADMIN_RULES:
            if re.search(pattern, info.key):
                return rows
    return None


def ninja_methods(info: RouteInfo) -> set[str] | None:
    """The methods a ninja route's operation answers, or None for a route that is not ninja's."""
    if not inspect.isfunction(info.callback):
        return None
    path_view = inspect.getclosurevars(info.callback).nonlocals.get("self")
    operations = getattr(path_view, "operations", None)
    if operations is None:
        return None
    name = info.key.rsplit(":", 1)[-1]
    return {method for op in operations if op.view_func.__name__ == name for method in op.methods}


# ---------------------------------------------------------------- the seeded world


@dataclass
class World:
    users: dict[str, User | None]
    tokens: dict[str, str]
    cookies: dict[str, dict[str, str]]  # the login cookie of each persona
    params: dict[str, dict[str, str]] = field(default_factory=dict)  # parameter -> {target: value}
    admin_objects: dict[str, dict[str, str]] = field(default_factory=dict)  # "app_model" -> {target: pk}
    markers: list[str] = field(default_factory=list)  # what a scoped persona must never be shown
    # Parameters a route fills with other objects than `params` gives: route key -> parameter -> {target: value}.
    route_params: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)


def _run_with_item(flow_name: str, output_type: str, text: str, *, decided: bool) -> tuple[FlowRun, ReviewItem]:
    run = FlowRun.objects.create(flow_name=flow_name, status=RunStatus.WAITING_REVIEW, inputs={"text": text})
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review", context={}, state={})
    item = ReviewItem.objects.create(
        run=run,
        pending=pending,
        method="review",
        output_type=output_type,
        output={"text": text},
        outcomes=["approved", "rejected"],
        status=ReviewStatus.DECIDED if decided else ReviewStatus.PENDING,
        decided_at=timezone.now() if decided else None,
    )
    return run, item


def seed_world() -> World:
    people: dict[str, User | None] = {"anonymous": None, "no_role": User.objects.create_user("no_role")}
    people["scoped"] = user_in_role("scoped", "reviewer", MINE_TYPE)
    people["reviewer"] = user_in_role("reviewer", "reviewer")
    for name, types in (("manager", None), ("scoped_manager", [MINE_TYPE])):
        people[name] = User.objects.create_user(name)
        role_grant(user=people[name], role="manager", output_types=types)
    tokens = {name: api_token_create(user=user) for name, user in people.items() if user is not None}
    cookies = {}
    for name, user in people.items():
        client = Client()
        if user is not None:
            client.force_login(user)
        cookies[name] = {key: morsel.value for key, morsel in client.cookies.items()}
    world = World(users=people, tokens=tokens, cookies=cookies)

    runs, items, decisions, steps, checkpoints, gates, decided_items, documents = {}, {}, {}, {}, {}, {}, {}, {}
    for target, flow_name, output_type in ((MINE, MINE_FLOW, MINE_TYPE), (OTHER, OTHER_FLOW, OTHER_TYPE)):
        runs[target], items[target] = _run_with_item(flow_name, output_type, f"{target}-input", decided=False)
        _, decided = _run_with_item(flow_name, output_type, f"{target}-decided-input", decided=True)
        decisions[target] = Decision.objects.create(item=decided, outcome="approved", user=people["reviewer"])
        SecondReview.objects.create(
            item=decided,
            output_type=output_type,
            first_user=people["reviewer"],
            status=SecondReviewStatus.DISAGREED,
            outcome="rejected",
            agreed=False,
            at=timezone.now(),
        )
        decided_items[target] = decided
        steps[target] = Step.objects.create(run=runs[target], method="review", started_at=timezone.now())
        checkpoints[target] = Checkpoint.objects.create(
            flow_uuid=str(runs[target].id), sequence=1, method="review", occurrence=1, state={}
        )
        gates[target] = GateDecision.objects.create(
            output_type=output_type, route=Route.HUMAN_REVIEW, run=runs[target], review_item=items[target]
        )
        policy_ensure(output_type=output_type)
        documents[target] = document_store(
            run=runs[target],
            input_name="text",
            upload=SimpleUploadedFile(f"{target}.pdf", text_pdf([f"{target}-input"]), "application/pdf"),
            pages=1,
        )
    untyped = FlowRun.objects.create(flow_name=UNTYPED_FLOW, status=RunStatus.QUEUED, inputs={"label": "untyped"})

    def pair(objects: dict[str, Any], attribute: str = "pk") -> dict[str, str]:
        return {target: str(getattr(obj, attribute)) for target, obj in objects.items()}

    world.params = {
        "run_id": pair(runs),
        "item_id": pair(items),
        "document_id": pair(documents),
        "page": {MINE: "1"},
        "output_type": {MINE: MINE_TYPE, OTHER: OTHER_TYPE},
        "name": {MINE: MINE_FLOW, OTHER: OTHER_FLOW},
        # The admin's few parameters that are not an object's id.
        "app_label": {MINE: "engine"},
        "url": {MINE: "no-such-page/"},
        "id": {MINE: str(people["no_role"].pk)},
        "content_type_id": {MINE: str(ContentType.objects.get_for_model(FlowRun).pk)},
    }
    success = Task.objects.create(id="s" * 32, name="ok", func="f", started=timezone.now(), stopped=timezone.now())
    failure = Task.objects.create(
        id="f" * 32, name="ko", func="f", started=timezone.now(), stopped=timezone.now(), success=False
    )
    world.admin_objects = {
        "engine_flowrun": pair(runs),
        "engine_step": pair(steps),
        "engine_checkpoint": pair(checkpoints),
        "engine_apitoken": {MINE: str(ApiToken.objects.filter(user=people["manager"]).get().pk)},
        "reviews_reviewitem": pair(items),
        "reviews_decision": pair(decisions),
        "autonomy_autonomypolicy": {MINE: str(policy_ensure(output_type=MINE_TYPE).pk)},
        "autonomy_gatedecision": pair(gates),
        "auth_user": {MINE: str(people["no_role"].pk)},
        "auth_group": {MINE: str(Group.objects.get(name="reviewer").pk)},
        "django_q_schedule": {MINE: str(Schedule.objects.create(name="matrix", func="math.floor").pk)},
        "django_q_success": {MINE: success.pk},
        "django_q_failure": {MINE: failure.pk},
        "django_q_ormq": {MINE: str(OrmQ.objects.create(key="k", payload="p").pk)},
        "r": pair(runs),  # admin/r/<content_type_id>/<object_id>/: "view on site" of a run
    }
    # Login throttling's records (django-axes), which only superusers may read.
    attempt = {"user_agent": "matrix", "ip_address": "127.0.0.1", "username": "nobody", "path_info": "/"}
    world.admin_objects["axes_accessattempt"] = {
        MINE: str(AccessAttempt.objects.create(**attempt, get_data="", post_data="", failures_since_start=1).pk)
    }
    world.admin_objects["axes_accesslog"] = {MINE: str(AccessLog.objects.create(**attempt).pk)}
    world.admin_objects["axes_accessfailurelog"] = {MINE: str(AccessFailureLog.objects.create(**attempt).pk)}
    world.admin_objects["autonomy_autonomypolicy"][OTHER] = str(policy_ensure(output_type=OTHER_TYPE).pk)
    # The reliability routes are about decided items (their second reviews and disagreements).
    world.route_params = {
        key: {"item_id": pair(decided_items)} for key in ("reviews:second_review", "reviews:adjudicate")
    }
    world.markers = [
        str(decided_items[OTHER].id),
        str(runs[OTHER].id),
        str(items[OTHER].id),
        str(untyped.id),
        OTHER_FLOW,
        "other-input",
        "other-decided-input",
    ]
    return world


_PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def fill(info: RouteInfo, world: World) -> dict[str, str]:
    """The route's URL for each target its parameters have."""
    names = [a or b for a, b in _PARAM.findall(info.route)]
    values: dict[str, dict[str, str]] = {}
    for name in names:
        if name == "object_id":
            model = re.match(r"admin/(\w+)/(\w+)?", info.route)
            key = "r" if model.group(1) == "r" else f"{model.group(1)}_{model.group(2)}"
            values[name] = world.admin_objects[key]
        else:
            values[name] = world.route_params.get(info.key, {}).get(name) or world.params[name]
    targets = [MINE, OTHER] if any(OTHER in v for v in values.values()) else [MINE]
    urls = {}
    for target in targets:

        def value(match: re.Match, target: str = target) -> str:
            options = values[match.group(1) or match.group(2)]
            return options.get(target, options[MINE])

        # A regex route's anchors (at the start of each included pattern) are no part of its URL.
        urls[target] = "/" + re.sub(r"[\^$]", "", _PARAM.sub(value, info.route))
    return urls


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class Call:
    route: str
    persona: str
    transport: str  # session, session-no-csrf, bearer, htmx
    method: str
    target: str
    url: str


def observed(response: HttpResponse) -> int | str:
    if response.status_code in (301, 302):
        location = response["Location"]
        if location.startswith(settings.LOGIN_URL):
            return LOGIN
        if location.startswith("/admin/login/"):
            return ADMIN_LOGIN
    if response.has_header("HX-Redirect") and response["HX-Redirect"].startswith(settings.LOGIN_URL):
        return HX_LOGIN
    return response.status_code


def send(call: Call, world: World) -> HttpResponse:
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    headers: dict[str, str] = {}
    if call.transport == "bearer":
        if world.users[call.persona] is not None:
            headers["Authorization"] = f"Bearer {world.tokens[call.persona]}"
    else:
        for key, value in world.cookies[call.persona].items():
            client.cookies[key] = value
        if call.transport != "session-no-csrf":
            client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_SECRET
            headers["X-CSRFToken"] = CSRF_SECRET
    if call.transport == "htmx":
        headers["HX-Request"] = "true"
    kwargs: dict[str, Any] = {"headers": headers}
    if call.method != "GET" and call.url.startswith("/api/"):
        kwargs.update(data=json.dumps(API_BODIES.get(call.route, {})), content_type="application/json")
    elif call.method != "GET":
        kwargs.update(data="", content_type="application/x-www-form-urlencoded")
    # A savepoint per request: no cell sees the writes of another (a claim, a decision, a cancel).
    with transaction.atomic():
        try:
            return client.generic(call.method, call.url, **kwargs)
        finally:
            transaction.set_rollback(True)


def expected_for(info: RouteInfo, row: Row, call: Call) -> Cell:
    """The row's cell for the call, through its transport (see the module's docstring)."""

    def cell(persona: str) -> int | str:
        value = row[PERSONAS.index(persona)]
        if isinstance(value, tuple):
            return value[0] if call.target == MINE else value[1]
        return value

    anonymous = call.persona == "anonymous"
    if call.transport == "session-no-csrf":
        return 401 if info.is_api and anonymous else 403
    if call.transport == "bearer" and not info.is_api:
        # Not a page login; and an unsafe request without the CSRF token is stopped by the middleware.
        return cell("anonymous") if call.method == "GET" else 403
    if call.transport == "htmx" and cell(call.persona) == LOGIN:
        return HX_LOGIN
    return cell(call.persona)


def calls(info: RouteInfo, rows: dict[str, Row], urls: dict[str, str]) -> Iterator[Call]:
    for method in rows:
        for persona in PERSONAS:
            for target, url in urls.items():
                transports = ["session"]
                if not info.is_admin:
                    transports.append("bearer")
                if method == "GET" and not info.is_api and not info.is_admin:
                    transports.append("htmx")
                # The CSRF check is the middleware's on pages (one persona shows it is on) and each
                # authentication's on the API.
                if method != "GET" and (info.is_api or persona == "manager"):
                    transports.append("session-no-csrf")
                for transport in transports:
                    yield Call(info.key, persona, transport, method, target, url)


def leaks(response: HttpResponse, world: World) -> list[str]:
    if not 200 <= response.status_code < 300:
        return []
    # A streamed answer (an export) is read to its end: a leak may be in any row.
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    content = raw.decode(errors="replace")
    return [marker for marker in world.markers if marker in content]


# ---------------------------------------------------------------- tests

CLASSIFY_HELP = (
    "Classify each in tests/test_authorization_matrix.py: add a row to MATRIX (or an ADMIN_RULES pattern) "
    "giving, for each method the route accepts, what (anonymous, no role, scoped reviewer, reviewer, manager, "
    "scoped manager) get, e.g. {'GET': (LOGIN, 403, (200, 404), 200, 200, (200, 404))}."
)


def test_every_route_is_classified():
    unclassified = [info.key for info in routes() if declared_methods(info) is None]
    assert not unclassified, f"Routes with no authorization row: {unclassified}. {CLASSIFY_HELP}"
    stale = set(MATRIX) - {info.key for info in routes()}
    assert not stale, f"MATRIX rows for routes that no longer exist: {sorted(stale)}"


@pytest.mark.django_db
def test_authorization_matrix():
    world = seed_world()
    problems: list[str] = []
    for info in routes():
        rows = declared_methods(info)
        if rows is None:
            problems.append(f"{info.key}: not classified. {CLASSIFY_HELP}")
            continue
        urls = fill(info, world)
        for url in urls.values():
            # ResolverMatch.route drops the "^" of an included regex pattern.
            assert resolve(url).route.replace("^", "") == info.route.replace("^", ""), f"{url} is not {info.route}"
        problems += _check_methods(info, rows, urls, world)
        for call in calls(info, rows, urls):
            response = send(call, world)
            got, want = observed(response), expected_for(info, rows[call.method], call)
            where = f"{info.key} {call.method} {call.url} as {call.persona} ({call.transport}, {call.target})"
            if got != want:
                problems.append(f"{where}: expected {want}, got {got}")
            if call.persona in SCOPED_PERSONAS and (shown := leaks(response, world)):
                problems.append(f"{where}: shows another type's {shown}")
    assert not problems, f"{len(problems)} cells differ from the matrix:\n" + "\n".join(problems)


def _check_methods(info: RouteInfo, rows: dict[str, Row], urls: dict[str, str], world: World) -> list[str]:
    """The methods a route accepts are exactly the ones its row declares."""
    if info.is_admin or info.key in METHOD_BLIND:
        return []
    declared = set(rows)
    accepted = ninja_methods(info)
    if accepted is not None:
        if accepted != declared:
            return [f"{info.key}: accepts {sorted(accepted)}, the matrix declares {sorted(declared)}"]
        return []
    problems = []
    for method in sorted({"GET", *UNSAFE} - declared):
        call = Call(info.key, "manager", "session", method, MINE, urls[MINE])
        if (got := observed(send(call, world))) != 405:
            problems.append(f"{info.key}: {method} is not in the matrix but answers {got}, not 405")
    return problems


def test_matrix_cells_name_known_personas_and_statuses():
    """Rows have one cell per persona, each a status or a (mine, other) pair."""
    for rows in [*MATRIX.values(), *(rows for _, rows in ADMIN_RULES)]:
        for row in rows.values():
            assert len(row) == len(PERSONAS), row
            for cell in row:
                for value in cell if isinstance(cell, tuple) else (cell,):
                    assert isinstance(value, int) or value in (LOGIN, ADMIN_LOGIN), row
