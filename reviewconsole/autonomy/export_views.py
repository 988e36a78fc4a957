"""Exports of a type's decisions, as pages (the form on the type's page) and for the API.

Managers only, within their output-type limit: a type outside it is refused before it is looked up (403, as
on the type's page), an unknown type is 404. Both exports stream (`exports`), so the response is sent as the
rows are read; nothing of another type can be in it, since the one query filters on the type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from reviewconsole.autonomy.exports import audit_csv, dataset_jsonl
from reviewconsole.autonomy.forms import ExportForm
from reviewconsole.autonomy.models import AutonomyPolicy
from reviewconsole.autonomy.views import is_manager, policy_get_for_user

# kind: (writer, content type, file extension)
EXPORTS: dict[str, tuple[Callable[..., Iterator[str]], str, str]] = {
    "audit": (audit_csv, "text/csv; charset=utf-8", "csv"),
    "dataset": (dataset_jsonl, "application/jsonl; charset=utf-8", "jsonl"),
}


def export_policy_for_user(user: Any, output_type: str) -> AutonomyPolicy:
    """The type's policy if `user` may export it, else PermissionDenied (403) or Http404."""
    policy = policy_get_for_user(user, output_type)
    if not is_manager(user):
        raise PermissionDenied("Only managers may export decisions.")
    return policy


def export_filename(output_type: str, kind: str, date_from: date | None, date_to: date | None) -> str:
    """A name any file system takes: the type slugified (it may hold "/" or anything a flow chose), the days."""
    days = f"{date_from.isoformat() if date_from else 'start'}-to-{date_to.isoformat() if date_to else 'now'}"
    return f"{slugify(output_type) or 'type'}-{kind}-{days}.{EXPORTS[kind][2]}"


def export_response(*, output_type: str, kind: str, date_from: date | None, date_to: date | None) -> HttpResponse:
    """The export streamed as a download; its rows are read while it is sent."""
    write, content_type, _ = EXPORTS[kind]
    response = StreamingHttpResponse(
        write(output_type=output_type, date_from=date_from, date_to=date_to), content_type=content_type
    )
    response["Content-Disposition"] = content_disposition_header(
        True, export_filename(output_type, kind, date_from, date_to)
    )
    # Decisions and reviewers' names: kept by no cache on the way.
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def export(request: HttpRequest, output_type: str, kind: str) -> HttpResponse:
    """A type's audit (CSV) or dataset (JSONL) export over `date_from`..`date_to`; bad dates get the form back
    with the problem named (400)."""
    policy = export_policy_for_user(request.user, output_type)
    form = ExportForm(request.GET)
    if not form.is_valid():
        return render(request, "autonomy/export.html", {"policy": policy, "export_form": form}, status=400)
    return export_response(
        output_type=policy.output_type,
        kind=kind,
        date_from=form.cleaned_data["date_from"],
        date_to=form.cleaned_data["date_to"],
    )
