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

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from reviewconsole.autonomy.models import FieldError, GateDecision, PolicyChange, Route, Verdict
from reviewconsole.autonomy.services import gate, rollup_mark_stale

SIM_PREFIX = "sim_"
# acc(c) = 1 / (1 + exp(-8 (c - 0.432))): 14% at c=0.2, 63% at 0.5, 95% at 0.80, 99% at 1.0.
DEFAULT_CURVE = "logistic:8:0.432"
# Beta(5, 2): mean 0.71, most outputs fairly confident, as language models tend to be.
DEFAULT_DISTRIBUTION = "beta:5:2"
# What a simulated reviewer corrects when an output is wrong, and how often.
ERROR_FIELDS = ("total_amount", "vendor", "invoice_date", "line_items")
ERROR_FIELD_WEIGHTS = (0.4, 0.25, 0.2, 0.15)
REJECT_REASONS = ("wrong_data", "incomplete", "not_applicable", "other")
REJECT_SHARE = 0.25


def sim_type(name: str) -> str:
    """The simulation's output type: always `sim_`-prefixed, so real statistics are never touched."""
    return name if name.startswith(SIM_PREFIX) else SIM_PREFIX + name


@dataclass(frozen=True)
class Curve:
    """True accuracy as a function of confidence: `logistic:K:MID` or `linear:A:B` (a + b·c, clipped)."""

    kind: str
    a: float
    b: float

    @classmethod
    def parse(cls, text: str) -> Curve:
        parts = text.split(":")
        if len(parts) != 3 or parts[0] not in ("logistic", "linear"):
            raise ValueError(f"curve must be logistic:K:MID or linear:A:B, not {text!r}")
        return cls(parts[0], float(parts[1]), float(parts[2]))

    def accuracy(self, confidence: float, delta: float = 0.0) -> float:
        """The chance an output of this confidence is correct, lowered by `delta` under drift."""
        if self.kind == "logistic":
            value = 1 / (1 + math.exp(-self.a * (confidence - self.b)))
        else:
            value = self.a + self.b * confidence
        return min(1.0, max(0.0, value - delta))

    def __str__(self) -> str:
        return f"{self.kind}:{self.a:g}:{self.b:g}"


@dataclass(frozen=True)
class ConfidenceDistribution:
    """Where confidences fall: `beta:A:B`, or `uniform` (= beta:1:1)."""

    alpha: float
    beta: float

    @classmethod
    def parse(cls, text: str) -> ConfidenceDistribution:
        if text == "uniform":
            return cls(1.0, 1.0)
        parts = text.split(":")
        if len(parts) != 3 or parts[0] != "beta":
            raise ValueError(f"confidence distribution must be beta:A:B or uniform, not {text!r}")
        return cls(float(parts[1]), float(parts[2]))

    def sample(self, rng: random.Random) -> float:
        return rng.betavariate(self.alpha, self.beta)

    def density(self, c: float) -> float:
        """Unnormalised density; only ratios of its integrals are used."""
        if c <= 0 or c >= 1:
            return 0.0
        return math.exp((self.alpha - 1) * math.log(c) + (self.beta - 1) * math.log(1 - c))

    def __str__(self) -> str:
        return f"beta:{self.alpha:g}:{self.beta:g}"


def true_accuracy_above(
    curve: Curve, distribution: ConfidenceDistribution, threshold: float, *, delta: float = 0.0, steps: int = 4000
) -> float | None:
    """E[accuracy(c) | c ≥ threshold], by the midpoint rule; None when no confidence reaches the threshold."""
    low = max(0.0, threshold)
    if low >= 1:
        return curve.accuracy(1.0, delta)
    width = (1 - low) / steps
    mass = total = 0.0
    for i in range(steps):
        c = low + (i + 0.5) * width
        density = distribution.density(c)
        mass += density
        total += density * curve.accuracy(c, delta)
    return total / mass if mass > 0 else None


@dataclass(frozen=True)
class SimulatedOutput:
    index: int
    confidence: float
    correct: bool
    drifted: bool
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
    """`n` outputs with their true correctness; from output `drift_after` on, accuracy is lower by `drift_delta`.

    `start` numbers the outputs (and offsets the drift point) when a
    simulation is generated in several parts; each part needs its own seed.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not security
    outputs = []
    for offset in range(n):
        index = start + offset
        # Rounded like a model's reported confidence; keeps printed tables readable.
        confidence = round(distribution.sample(rng), 4)
        drifted = drift_after is not None and index >= drift_after
        correct = rng.random() < curve.accuracy(confidence, drift_delta if drifted else 0.0)
        fields: tuple[str, ...] = ()
        reason = ""
        if not correct:
            if rng.random() < REJECT_SHARE:
                reason = rng.choice(REJECT_REASONS)
            else:
                fields = tuple(sorted(set(rng.choices(ERROR_FIELDS, ERROR_FIELD_WEIGHTS, k=rng.randint(1, 2)))))
        outputs.append(SimulatedOutput(index, confidence, correct, drifted, fields, reason))
    return outputs


def route_in_memory(
    confidence: float, *, threshold: float | None, audit_rate: float, rng: random.Random
) -> tuple[bool, float]:
    """(reviewed, review_probability) by the same rule and random draws as `gate()`, without a database."""
    if threshold is None or confidence < threshold:
        return True, 1.0
    return rng.random() < audit_rate, audit_rate


def reviewed_in_memory(
    outputs: list[SimulatedOutput], *, threshold: float | None, audit_rate: float, gate_seed: int
) -> list[tuple[float, bool, float]]:
    """The (confidence, correct, review_probability) of the outputs a fixed policy sends to review."""
    rng = random.Random(gate_seed)  # noqa: S311 - a reproducible simulation, not security
    reviewed = []
    for output in outputs:
        is_reviewed, probability = route_in_memory(
            output.confidence, threshold=threshold, audit_rate=audit_rate, rng=rng
        )
        if is_reviewed:
            reviewed.append((output.confidence, output.correct, probability))
    return reviewed


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
                row.verdict_at = (row.created_at + timedelta(minutes=5)) if clock_start else now
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
        mid = (band["low"] + band["high"]) / 2
        band["true_accuracy"] = curve.accuracy(mid)
        band["true_accuracy_drifted"] = curve.accuracy(mid, drift_delta) if drift_delta else None
    return {"recommendation": rec, "true_accuracy_at_recommendation": truth, "summary": summary, "bands": bands}
