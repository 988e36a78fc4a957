import pytest
from django_q.models import Schedule


@pytest.mark.django_db
def test_migrations_leave_no_minute_schedule_for_the_sweeper():
    # Non-transactional on purpose: transactional tests flush migration data.
    # Workers sweep from their heartbeat, at an interval that follows the lease (tests/test_queue_sweeper.py).
    engine_schedules = Schedule.objects.filter(func__startswith="reviewconsole.engine.")
    assert not engine_schedules.filter(schedule_type=Schedule.MINUTES).exists()
    assert not engine_schedules.filter(func__contains="sweep").exists()
    assert Schedule.objects.filter(func__startswith="reviewconsole.").exists(), "the other schedules stay"
