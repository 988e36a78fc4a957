"""Recall: what earlier runs of a flow concluded, for flows that remember across runs.

A completed run's result is already durable, reviewed where the flow asked for
review, and visible on the run page, so it makes a plain and inspectable memory:
a flow that puts a key (a normalised company name, say) in its result can find
the latest run that concluded something about the same thing. Key lookups on
the JSON column work the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from reviewconsole.engine.models import FlowRun, RunStatus


def latest_completed_run(*, flow_name: str, result_key: str, value: str) -> FlowRun | None:
    """The newest completed run of ``flow_name`` whose ``result[result_key]`` equals ``value``, or None.

    Only id, finish time and result are loaded: a recall needs nothing else,
    and state and inputs can be large.
    """
    return (
        FlowRun.objects.filter(flow_name=flow_name, status=RunStatus.COMPLETED, **{f"result__{result_key}": value})
        .only("id", "finished_at", "result")
        .order_by("-finished_at", "-created_at")
        .first()
    )
