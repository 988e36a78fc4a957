"""JSON endpoints for flows and runs: list the flows, start a run, list runs, read a run.

No `from __future__ import annotations` here: ninja resolves a paginated view's
parameter annotations from its wrapper's module, where these names are unknown.
"""

import copy
from datetime import datetime
from typing import Any
from uuid import UUID

import pydantic
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.http import HttpRequest
from django.urls import reverse
from ninja import Body, Query, Router, Schema, Status
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import CursorPagination, paginate

from reviewconsole.engine import registry, selectors, services
from reviewconsole.engine.models import FlowRun, RunStatus, Step, StepKind, StepStatus
from reviewconsole.engine.registry import FlowSpec
from reviewconsole.openapi import error_responses, inline_refs

router = Router(tags=["flows"])


def require_perm(request: HttpRequest, perm: str) -> None:
    """Raise PermissionDenied (403) unless the authenticated user has `perm`."""
    if not request.auth.has_perm(perm):
        raise PermissionDenied(f"You need the '{perm}' permission.")


class FlowOut(Schema):
    name: str
    title: str
    description: str
    output_types: list[str]
    input_schema: dict[str, Any] = pydantic.Field(description="JSON Schema of the inputs a run takes.")
    review_reasons: dict[str, str] = pydantic.Field(
        description="The flow's own review reasons (code: label), beyond the built-in ones; "
        "`GET /api/v1/reviews/reasons` lists them all."
    )

    @staticmethod
    def resolve_input_schema(spec: FlowSpec) -> dict[str, Any]:
        return spec.input_model.model_json_schema()


class RunCreatedOut(Schema):
    id: UUID
    status: RunStatus
    url: str = pydantic.Field(description="The run's page in the console.")


class RunSummaryOut(Schema):
    id: UUID
    flow: str
    status: RunStatus
    trigger: str
    created_by: str | None
    attempts: int
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @staticmethod
    def resolve_flow(run: FlowRun) -> str:
        return run.flow_name

    @staticmethod
    def resolve_created_by(run: FlowRun) -> str | None:
        return run.created_by.get_username() if run.created_by else None


class StepOut(Schema):
    method: str
    kind: StepKind
    status: StepStatus
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    tokens_in: int | None
    tokens_out: int | None
    model: str
    error: str


class RunWithStepsOut(Schema):
    """A run with its steps; the reviews app adds the run's review items (its `RunOut`, `GET /runs/{run_id}`)."""

    id: UUID
    flow: str
    status: RunStatus
    inputs: dict[str, Any]
    state: dict[str, Any]
    result: Any
    error: str
    traceback: str
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    steps: list[StepOut]

    @staticmethod
    def resolve_flow(run: FlowRun) -> str:
        return run.flow_name

    @staticmethod
    def resolve_steps(run: FlowRun) -> list[Step]:
        return list(run.steps.all())


def _inputs_error(error: pydantic.ValidationError) -> NinjaValidationError:
    """The flow's input errors in the shape ninja gives its own body errors."""
    return NinjaValidationError(
        [
            {"loc": ["body", "inputs", *detail["loc"]], "msg": detail["msg"], "type": detail["type"]}
            for detail in error.errors(include_url=False)
        ]
    )


@router.get("/flows", response={200: list[FlowOut], **error_responses(403)})
def flow_list(request: HttpRequest) -> list[FlowSpec]:
    """The flows a run can be started for, with the JSON Schema of their inputs."""
    require_perm(request, selectors.VIEW_RUNS)
    return selectors.flows_visible_to(request.auth)


@router.post(
    "/flows/{name}/runs",
    response={201: RunCreatedOut, **error_responses(403, 404, 409, 422)},
    openapi_extra={
        "responses": {
            403: {"description": "You may not start runs."},
            404: {"description": "No such flow."},
            409: {"description": "The flow failed to load (an import or structure error); `detail` says why."},
            422: {"description": "The inputs do not match the flow's input schema; `loc` names the field."},
        }
    },
)
def flow_run_create(request: HttpRequest, name: str, inputs: Body[dict[str, Any]]) -> Status[RunCreatedOut]:
    """Start a run of flow `name`. The body is the inputs object, validated against the flow's input schema."""
    require_perm(request, "engine.add_flowrun")
    spec = selectors.flow_get_for_user(user=request.auth, name=name)
    try:
        validated = spec.input_model.model_validate(inputs)
    except pydantic.ValidationError as error:
        raise _inputs_error(error) from None
    run = services.run_create(
        flow_name=spec.name, inputs=validated.model_dump(mode="json"), user=request.auth, trigger="api"
    )
    url = request.build_absolute_uri(reverse("engine:run_detail", args=[run.id]))
    return Status(201, RunCreatedOut(id=run.id, status=run.status, url=url))


@router.get("/runs", response={200: list[RunSummaryOut], **error_responses(403, 422)})
@paginate(CursorPagination, ordering=("-created_at", "-id"), page_size=50)
def run_list(request: HttpRequest, flow: Query[str] = "", status: Query[RunStatus | None] = None) -> QuerySet[FlowRun]:
    """Runs newest first, optionally of one flow or in one status; follow `next` for older ones."""
    require_perm(request, selectors.VIEW_RUNS)
    return selectors.run_list(user=request.auth, flow_name=flow, status=status or "")


def run_with_steps(request: HttpRequest, run_id: UUID) -> FlowRun:
    """The run `request`'s user may see, its steps prefetched; PermissionDenied or DoesNotExist otherwise."""
    require_perm(request, selectors.VIEW_RUNS)
    run = selectors.run_get_for_user(user=request.auth, run_id=run_id)
    prefetch_related_objects([run], Prefetch("steps", queryset=selectors.run_steps(run_id=run.id)))
    return run


def document_flow_runs(schema: dict[str, Any], *, reader: Any = None) -> None:
    """Document `POST .../flows/{name}/runs` once per flow `reader` may see (every flow without one), each
    with that flow's input schema.

    One templated operation could only take a free-form object; a concrete path per flow tells a client
    exactly which inputs each flow takes (and lets a generated client or schemathesis send valid ones).
    """
    suffix = "/flows/{name}/runs"
    paths: dict[str, Any] = schema["paths"]
    template = next(path for path in paths if path.endswith(suffix))
    prefix = template.removesuffix(suffix)
    operation = paths[template]["post"]
    documented: dict[str, Any] = {}
    for path, item in paths.items():
        if path != template:
            documented[path] = item
            continue
        for spec in registry.all_flows() if reader is None else selectors.flows_visible_to(reader):
            flow_operation = copy.deepcopy(operation)
            flow_operation["operationId"] = f"{operation['operationId']}_{spec.name}"
            flow_operation["summary"] = f"Start a run of {spec.title}"
            flow_operation["parameters"] = [p for p in operation.get("parameters", []) if p["name"] != "name"]
            if not flow_operation["parameters"]:
                del flow_operation["parameters"]
            flow_operation["requestBody"] = {
                "content": {"application/json": {"schema": inline_refs(spec.input_model.model_json_schema())}},
                "required": True,
            }
            documented[f"{prefix}/flows/{spec.name}/runs"] = {"post": flow_operation}
    paths.clear()
    paths.update(documented)
