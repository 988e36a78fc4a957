"""SIMULATION ONLY: synthetic outputs whose true correctness follows a known curve.

Nothing here runs in production. `simulate_reviews` uses it to demonstrate the
statistics, and the soundness tests use it to check them against the truth:
each simulated output has a confidence drawn from a known distribution and is
correct with probability accuracy(confidence), so the true accuracy above any
threshold, E[accuracy(c) | c ≥ t], is known exactly.

Outputs go through the real `gate()`. Outputs routed to review get a truthful
verdict written straight onto their gate decision (no review item, no flow):
the simulated reviewer approves correct outputs and edits or rejects wrong
ones. Everything is deterministic given the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from reviewconsole.autonomy import montecarlo
from reviewconsole.autonomy.models import FieldError, GateDecision, PolicyChange, Route, Verdict

# The curves, distributions and true accuracies are the Monte Carlo's: one definition of the truth.
from reviewconsole.autonomy.montecarlo import (  # noqa: F401 - re-exported for the command and tests
    DEFAULT_CURVE,
    DEFAULT_DISTRIBUTION,
    ConfidenceDistribution,
    Curve,
    true_accuracy_above,
    true_accuracy_between,
)
from reviewconsole.autonomy.services import gate, rollup_mark_stale

SIM_PREFIX = "sim_"
# What a simulated reviewer corrects when an output is wrong, and how often.
ERROR_FIELDS = ("total_amount", "vendor", "invoice_date", "line_items")
ERROR_FIELD_WEIGHTS = (0.4, 0.25, 0.2, 0.15)
REJECT_REASONS = ("wrong_data", "incomplete", "not_applicable", "other")
REJECT_SHARE = 0.25


def sim_type(name: str) -> str:
    """The simulation's output type: always `sim_`-prefixed, so real statistics are never touched."""
    return name if name.startswith(SIM_PREFIX) else SIM_PREFIX + name


@dataclass(frozen=True)
class SimulatedOutput(montecarlo.SimulatedOutput):
    """A simulated output, and what its reviewer corrects or why they reject it when it is wrong."""

    error_fields: tuple[str, ...] = ()
    reject_reason: str = ""


def generate(
    *,
    seed: int,
    n: int,
    curve: Curve,
    distribution: ConfidenceDistribution,
    drift_after: int | None = None,
    drift_delta: float = 0.0,
    start: int = 0,
) -> list[SimulatedOutput]:
    """`n` outputs with their true correctness (`montecarlo.generate`), and for each wrong one the fields
    its reviewer edits or the reason they reject it; from output `drift_after` on, accuracy is lower by
    `drift_delta`.

    `start` numbers the outputs (and offsets the drift point) when a
    simulation is generated in several parts; each part needs its own seed.
    """
    outputs = montecarlo.generate(
        seed=seed,
        n=n,
        curve=curve,
        distribution=distribution,
        drift_after=drift_after,
        drift_delta=drift_delta,
        start=start,
    )
    rng = random.Random(f"errors:{seed}")  # noqa: S311 - a reproducible simulation, not security
    reviewed = []
    for output in outputs:
        fields: tuple[str, ...] = ()
        reason = ""
        if not output.correct:
            if rng.random() < REJECT_SHARE:
                reason = rng.choice(REJECT_REASONS)
            else:
                fields = tuple(sorted(set(rng.choices(ERROR_FIELDS, ERROR_FIELD_WEIGHTS, k=rng.randint(1, 2)))))
        reviewed.append(SimulatedOutput(**vars(output), error_fields=fields, reject_reason=reason))
    return reviewed


def reviewed_in_memory(
    outputs: list[SimulatedOutput], *, threshold: float | None, audit_rate: float, gate_seed: int
) -> list[tuple[float, bool, float]]:
    """The (confidence, correct, review_probability) of the outputs a fixed policy sends to review, with the
    same random draws as the real gate given `random.Random(gate_seed)`."""
    rng = random.Random(gate_seed)  # noqa: S311 - a reproducible simulation, not security
    return [
        (o.confidence, o.correct, o.review_probability)
        for o in montecarlo.observe(outputs, threshold=threshold, audit_rate=audit_rate, rng=rng)
    ]


# A simulated reviewer decides this long after the output arrives.
VERDICT_DELAY = timedelta(minutes=5)


def stamp(change: PolicyChange | None, at: datetime) -> None:
    """Date a policy change on the simulated clock, so verdicts simulated after it come after it (the guard
    watches the verdicts since the latest change)."""
    if change is not None:
        change.at = at + timedelta(seconds=1)
        PolicyChange.objects.filter(pk=change.pk).update(at=change.at)


# --------------------------------------------------------------------------- through the database


@dataclass
class SimulationResult:
    output_type: str
    outputs: int = 0
    reviewed: int = 0
    audits: int = 0
    auto: int = 0
    # Realised truth of what the gate let through unreviewed (known only in a simulation).
    auto_correct: int = 0
    changes: list[PolicyChange] = field(default_factory=list)
    # (output index after which the check ran, the change) for each automatic change.
    change_points: list[tuple[int, PolicyChange]] = field(default_factory=list)
    # Audit samples of drifted outputs so far, and their number when the first automatic change came.
    drift_audits: int = 0
    audits_after_drift_at_change: int | None = None


def run(
    *,
    output_type: str,
    outputs: list[SimulatedOutput],
    gate_rng: random.Random,
    check_every: int = 50,
    check: bool = True,
    clock_start: datetime | None = None,
    spacing: timedelta | None = None,
    result: SimulationResult | None = None,
) -> SimulationResult:
    """Send `outputs` through the real gate and have the simulated reviewer decide the reviewed ones.

    Works in chunks of `check_every` outputs, one transaction each: the gate
    decisions, then their verdicts in one bulk update, then (with `check`)
    `check_autonomy`, the regression guard and autopilot that run after real
    verdicts. With `clock_start`/`spacing`, created_at and verdict_at are set
    to a simulated clock, so trends span days.
    """
    from reviewconsole.autonomy.tasks import check_autonomy

    output_type = sim_type(output_type)
    result = result or SimulationResult(output_type=output_type)
    last_id = GateDecision.objects.aggregate(last=Max("id"))["last"] or 0
    for begin in range(0, len(outputs), check_every):
        chunk = outputs[begin : begin + check_every]
        with transaction.atomic():
            for output in chunk:
                gate(output_type, output.confidence, rng=gate_rng)
            rows = list(GateDecision.objects.filter(output_type=output_type, id__gt=last_id).order_by("id"))
            if len(rows) != len(chunk):
                raise RuntimeError(f"another process is writing gate decisions of {output_type}")
            last_id = rows[-1].id
            changed = []
            errors = []
            now = timezone.now()
            clocked = clock_start is not None and spacing is not None
            for row, output in zip(rows, chunk, strict=True):
                if clocked:
                    row.created_at = clock_start + spacing * output.index
                if row.route == Route.AUTO_APPROVED:
                    result.auto += 1
                    result.auto_correct += int(output.correct)
                    if clocked:
                        changed.append(row)
                    continue
                result.reviewed += 1
                result.audits += int(row.audit)
                if row.audit and output.drifted:
                    result.drift_audits += 1
                row.verdict = Verdict.CORRECT if output.correct else Verdict.INCORRECT
                row.error_fields = list(output.error_fields)
                row.reject_reason = output.reject_reason
                row.verdict_at = (row.created_at + VERDICT_DELAY) if clock_start else now
                changed.append(row)
                errors += [FieldError(gate_decision=row, output_type=output_type, field=f) for f in output.error_fields]
            fields = ["verdict", "error_fields", "reject_reason", "verdict_at"] + (["created_at"] if clocked else [])
            GateDecision.objects.bulk_update(changed, fields, batch_size=500)
            # Written past `verdict_record`, and with a clock possibly on rolled-up days: mark them stale.
            rollup_mark_stale(decisions=changed)
            FieldError.objects.bulk_create(errors)
        result.outputs += len(chunk)
        if check:
            for change in check_autonomy(output_type):
                if clocked:
                    stamp(change, clock_start + spacing * chunk[-1].index + VERDICT_DELAY)
                result.changes.append(change)
                result.change_points.append((chunk[-1].index, change))
                if result.audits_after_drift_at_change is None and chunk[-1].drifted:
                    result.audits_after_drift_at_change = result.drift_audits
    return result


def summary_rows(
    *, output_type: str, curve: Curve, distribution: ConfidenceDistribution, drift_delta: float = 0.0
) -> dict[str, Any]:
    """Estimates next to the truth, for the command's table."""
    from reviewconsole.autonomy import recommendation, selectors

    output_type = sim_type(output_type)
    rec = recommendation.recommend(output_type)
    summary = selectors.type_summary(output_type)
    bands = selectors.calibration(output_type)
    truth = None
    if rec["threshold"] is not None:
        truth = true_accuracy_above(curve, distribution, rec["threshold"])
    for band in bands:
        # The band's average over the confidences that fall in it, not the accuracy at its midpoint.
        low, high = band["low"], band["high"]
        band["true_accuracy"] = true_accuracy_between(curve, distribution, low, high)
        drifted = true_accuracy_between(curve, distribution, low, high, delta=drift_delta) if drift_delta else None
        band["true_accuracy_drifted"] = drifted
    return {"recommendation": rec, "true_accuracy_at_recommendation": truth, "summary": summary, "bands": bands}
