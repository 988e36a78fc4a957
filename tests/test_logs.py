"""LOG_FORMAT=json: one JSON object per line, with the run and review item ids on the lines that have them."""

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from reviewconsole.engine.services import run_create
from reviewconsole.logs import ContextIdsFilter, JsonFormatter, LogIdsMiddleware, log_ids
from reviewconsole.reviews.services import decide
from tests.paused_runs import paused_item
from tests.people import user_in_role


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged during the test, as the console handler writes it with LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextIdsFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def about(lines: list[dict], run_id: object) -> list[dict]:
    return [line for line in lines if str(run_id) in line["message"]]


@pytest.mark.django_db(transaction=True)
def test_a_runs_log_lines_carry_its_run_id(json_lines):
    run = run_create(flow_name="bad_router", inputs={})
    lines = parsed(json_lines)
    mine = about(lines, run.id)
    assert mine, lines
    assert all(line.get("run_id") == str(run.id) for line in mine), mine
    # Lines of the task queue itself, outside any run, carry none.
    assert any("run_id" not in line for line in lines if line["logger"] == "django-q")


@pytest.mark.django_db(transaction=True)
def test_a_resumes_lines_carry_the_item_and_the_run(json_lines):
    item = paused_item("payload_review")
    json_lines.truncate(0)
    json_lines.seek(0)
    decide(item_id=item.id, user=user_in_role("rita"), outcome="approved")
    resumed = about(parsed(json_lines), item.run_id)
    assert all(line.get("item_id") == str(item.id) for line in resumed), resumed
    # The claim names the run it resumes; from there on, the lines carry the run too.
    (completed,) = [line for line in resumed if "-> completed" in line["message"]]
    assert completed["run_id"] == str(item.run_id)


def test_a_views_lines_carry_the_id_its_url_names(json_lines):
    item_id = "8d7f1c9e-1111-4222-8333-944455556666"
    request = RequestFactory().get(f"/reviews/{item_id}/")

    def view(request, item_id):
        logging.getLogger("tests.view").warning("in the view")
        return HttpResponse()

    def handler(request):
        # As Django's handler does: process_view with the URL's arguments, then the view.
        middleware.process_view(request, view, (), {"item_id": item_id})
        return view(request, item_id=item_id)

    middleware = LogIdsMiddleware(handler)
    middleware(request)
    logging.getLogger("tests.view").warning("after the request")
    inside, after = parsed(json_lines)
    assert inside["item_id"] == item_id and "run_id" not in inside
    assert "item_id" not in after


def test_json_lines_hold_a_traceback_on_one_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextIdsFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logs.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_ids(run_id="r-1"), log_ids(item_id="i-1"):
            try:
                raise RuntimeError("boom\nsecond line")
            except RuntimeError:
                logger.exception("failed %s", "here")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    first, second = stream.getvalue().splitlines()
    failed = json.loads(first)
    assert failed["message"] == "failed here" and failed["level"] == "ERROR"
    assert failed["run_id"] == "r-1" and failed["item_id"] == "i-1"
    assert "RuntimeError: boom" in failed["exception"]
    assert "run_id" not in json.loads(second)
