"""Prometheus metrics at /metrics, computed from the database at each scrape.

Every figure is read from the database by a custom collector, so it is the same whichever gunicorn process
answers and counts what every qcluster process did, without a multiprocess directory. Each is one aggregate
query over an index: counts by status or type, and the histograms over what finished in the last
METRICS_WINDOW_SECONDS (gauge histograms: the distribution in that window, not counters since start-up).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric

from reviewconsole.autonomy.selectors import guard_firing_counts
from reviewconsole.engine.models import RunStatus
from reviewconsole.engine.selectors import newest_worker_heartbeat, run_counts_by_status, steps_finished_since
from reviewconsole.reviews.selectors import decision_counts_since, items_resumed_since, queue_counts_all

PREFIX = "review_console"
# Upper bounds in seconds. A step is a method (milliseconds to minutes with an LLM) or one LLM call.
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# From a decision to its flow running again (DESIGN.md's targets: 200 ms with Redis, 1 s with the ORM broker).
RESUME_BUCKETS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def histogram(
    name: str,
    documentation: str,
    rows: QuerySet,
    *,
    labels: Sequence[str],
    bounds: Sequence[float],
    within: Callable[[float], Q],
    total: Sum,
    seconds: Callable[[object], float],
) -> GaugeHistogramMetricFamily:
    """A gauge histogram of `rows` per `labels`, in one query: a filtered count per bound, plus the sum.

    `within(bound)` selects the rows at or under `bound` seconds; `seconds` turns the summed value into seconds.
    """
    aggregates = {f"le{i}": Count("pk", filter=within(bound)) for i, bound in enumerate(bounds)}
    result = rows.order_by().values(*labels).annotate(count=Count("pk"), total=total, **aggregates)
    family = GaugeHistogramMetricFamily(f"{PREFIX}_{name}", documentation, labels=list(labels))
    for row in result:
        buckets = [(repr(bound), row[f"le{i}"]) for i, bound in enumerate(bounds)]
        buckets.append(("+Inf", row["count"]))
        family.add_metric([str(row[label]) for label in labels], buckets, seconds(row["total"]))
    return family


class DatabaseCollector:
    """Collects every metric from the database; registered on a registry of its own (no process metrics:
    they would describe whichever web process answered)."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        since = now - timedelta(seconds=settings.METRICS_WINDOW_SECONDS)
        yield from self._queue(now)
        yield self._runs()
        yield histogram(
            "step_duration_seconds",
            "Durations of the steps (flow methods, LLM calls) that finished in the window, by flow and kind.",
            steps_finished_since(since),
            labels=("run__flow_name", "kind"),
            bounds=STEP_BUCKETS,
            within=lambda bound: Q(duration_ms__lte=bound * 1000),
            total=Sum("duration_ms"),
            seconds=lambda total: (total or 0) / 1000,
        )
        yield histogram(
            "resume_latency_seconds",
            "From a decision to its flow running again, for items decided in the window, by output type.",
            items_resumed_since(since),
            labels=("output_type",),
            bounds=RESUME_BUCKETS,
            within=lambda bound: Q(resumed_at__lte=F("decided_at") + timedelta(seconds=bound)),
            total=Sum(ExpressionWrapper(F("resumed_at") - F("decided_at"), output_field=DurationField())),
            seconds=lambda total: total.total_seconds() if total else 0.0,
        )
        yield self._decisions(since)
        yield self._guard_firings()
        yield from self._heartbeat(now)
        window = GaugeMetricFamily(
            f"{PREFIX}_metrics_window_seconds", "The window the histograms and decision counts cover."
        )
        window.add_metric([], settings.METRICS_WINDOW_SECONDS)
        yield window

    @staticmethod
    def _queue(now: object) -> Iterable[Metric]:
        pending = GaugeMetricFamily(
            f"{PREFIX}_pending_items", "Review items waiting for a decision, by output type.", labels=["output_type"]
        )
        oldest = GaugeMetricFamily(
            f"{PREFIX}_oldest_pending_age_seconds",
            "Age of the oldest review item waiting for a decision, by output type.",
            labels=["output_type"],
        )
        for row in queue_counts_all():
            pending.add_metric([row.output_type], row.pending)
            if row.oldest is not None:
                oldest.add_metric([row.output_type], max(0.0, (now - row.oldest).total_seconds()))
        return pending, oldest

    @staticmethod
    def _runs() -> Metric:
        family = GaugeMetricFamily(f"{PREFIX}_runs", "Flow runs by status (all kept runs).", labels=["status"])
        counts = run_counts_by_status()
        # Every status, zeros included: an alert on `runs{status="failed"} > 0` needs the series to exist.
        for status in RunStatus.values:
            family.add_metric([status], counts.get(status, 0))
        return family

    @staticmethod
    def _decisions(since: object) -> Metric:
        family = GaugeMetricFamily(
            f"{PREFIX}_decisions",
            "Decisions on items decided in the window, by output type and outcome.",
            labels=["output_type", "outcome"],
        )
        for row in decision_counts_since(since):
            family.add_metric([row["output_type"], row["outcome"]], row["count"])
        return family

    @staticmethod
    def _guard_firings() -> Metric:
        family = CounterMetricFamily(
            f"{PREFIX}_guard_firings",
            "Times the regression guard changed an output type's policy (its change log, all time).",
            labels=["output_type"],
        )
        for output_type, count in sorted(guard_firing_counts().items()):
            family.add_metric([output_type], count)
        return family

    @staticmethod
    def _heartbeat(now: object) -> Iterable[Metric]:
        newest = newest_worker_heartbeat()
        age = GaugeMetricFamily(
            f"{PREFIX}_worker_heartbeat_age_seconds",
            "Seconds since a qcluster worker last reported (+Inf: none in the last day).",
        )
        age.add_metric([], math.inf if newest is None else max(0.0, (now - newest).total_seconds()))
        return (age,)


def metrics_text() -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return generate_latest(registry)


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """The metrics, for a scraper bearing METRICS_TOKEN. No token configured: there is no such page (404)."""
    if not settings.METRICS_TOKEN:
        raise Http404("metrics are off")
    if not hmac.compare_digest(_bearer(request).encode(), settings.METRICS_TOKEN.encode()):
        response = HttpResponse("a valid metrics token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
