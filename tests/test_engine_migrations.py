import pytest
from django_q.models import Schedule


@pytest.mark.django_db
def test_migrations_install_the_sweeper_schedule():
    # Non-transactional on purpose: transactional tests flush migration data.
    schedule = Schedule.objects.get(func="reviewconsole.engine.tasks.sweep_expired_runs")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)
