"""Tasks queued by services: after the commit, through one broker per process, the flow's resume first."""

from unittest.mock import patch

import pytest
from django.db import transaction

from reviewconsole.engine import enqueue
from reviewconsole.engine.enqueue import enqueue_on_commit
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewItem
from reviewconsole.reviews.services import decide


@pytest.fixture
def queued():
    """The tasks handed to django-q2, in order, with the broker each went to; none runs."""
    calls = []
    with patch("django_q.tasks.async_task", lambda func, *args, **kwargs: calls.append((func, args, kwargs))):
        yield calls


@pytest.mark.django_db(transaction=True)
def test_tasks_are_queued_after_the_commit_and_never_on_rollback(queued):
    with transaction.atomic():
        enqueue_on_commit("reviewconsole.engine.tasks.run_flow", "a")
        assert queued == []
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit("reviewconsole.engine.tasks.run_flow", "b")
        raise RuntimeError("rolled back")
    assert [(func, args, kwargs["group"]) for func, args, kwargs in queued] == [
        ("reviewconsole.engine.tasks.run_flow", ("a",), "run_flow")
    ]


@pytest.mark.django_db(transaction=True)
def test_every_task_of_a_process_goes_through_one_broker(queued):
    enqueue._broker.cache_clear()
    with patch("django_q.brokers.get_broker", side_effect=lambda: object()) as get_broker:
        enqueue_on_commit("reviewconsole.engine.tasks.run_flow", "a")
        enqueue_on_commit("reviewconsole.engine.tasks.run_flow", "b")
    enqueue._broker.cache_clear()
    assert get_broker.call_count == 1
    assert queued[0][2]["broker"] is queued[1][2]["broker"]


@pytest.mark.django_db(transaction=True)
def test_a_decision_queues_the_flows_resume_before_the_autonomy_check(django_user_model):
    run_create(flow_name="emit_review", inputs={})  # runs inline (TASKS_SYNC) up to its review pause
    item = ReviewItem.objects.get()
    calls: list[str] = []
    with patch("django_q.tasks.async_task", lambda func, *args, **kwargs: calls.append(func)):
        decide(item_id=item.id, user=django_user_model.objects.create_user("rita"), outcome="approved")
    assert calls == ["reviewconsole.engine.tasks.resume_flow", "reviewconsole.autonomy.tasks.check_autonomy"]
