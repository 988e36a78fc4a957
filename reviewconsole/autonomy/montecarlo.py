"""SIMULATION ONLY: synthetic outputs whose true accuracy is known, run in memory through the statistical core.

Nothing here runs in production and nothing touches a database. Each simulated output has a confidence drawn
from a known distribution and is right with probability accuracy(confidence), so the true accuracy of what a
threshold would auto-process, E[accuracy(c) | c ≥ t], is known exactly. `simulate_reviews --seeds N` and the
soundness tests run the scenarios below over many seeds and compare the core's answers with that truth.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from reviewconsole.autonomy.evidence import BUCKET_EPSILON, Observation, RegressionMonitor, Stratum, recommend

# acc(c) = 1 / (1 + exp(-8 (c - 0.432))): 14% at c=0.2, 63% at 0.5, 95% at 0.80, 99% at 1.0.
DEFAULT_CURVE = "logistic:8:0.432"
# Beta(5, 2): mean 0.71, most outputs fairly confident, as language models tend to be.
DEFAULT_DISTRIBUTION = "beta:5:2"


@dataclass(frozen=True)
class Curve:
    """True accuracy by confidence: `logistic:K:MID`, `linear:A:B` (a + b·c), or `plateau:LEVEL:FROM` (rises
    linearly from 0.5 at c=0 to LEVEL at c=FROM, then stays at LEVEL); clipped to [0, 1]."""

    kind: str
    a: float
    b: float

    @classmethod
    def parse(cls, text: str) -> Curve:
        parts = text.split(":")
        if len(parts) != 3 or parts[0] not in ("logistic", "linear", "plateau"):
            raise ValueError(f"curve must be logistic:K:MID, linear:A:B or plateau:LEVEL:FROM, not {text!r}")
        try:
            a, b = float(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError(f"curve parameters must be numbers, not {text!r}") from None
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"curve parameters must be finite, not {text!r}")
        return cls(parts[0], a, b)

    def accuracy(self, confidence: float, delta: float = 0.0) -> float:
        """The chance an output of this confidence is right, lowered by `delta` under drift."""
        return float(self.accuracies(np.asarray(confidence, dtype=float), delta))

    def accuracies(self, confidences: np.ndarray, delta: float | np.ndarray = 0.0) -> np.ndarray:
        """`accuracy` of every confidence in an array at once (`delta` a number or one per confidence)."""
        with np.errstate(all="ignore"):
            if self.kind == "logistic":
                value = 1 / (1 + np.exp(-self.a * (confidences - self.b)))
            elif self.kind == "linear":
                value = self.a + self.b * confidences
            else:
                value = np.where(confidences >= self.b, self.a, 0.5 + (self.a - 0.5) * confidences / self.b)
        return np.clip(value - delta, 0.0, 1.0)

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
        try:
            alpha, beta = float(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError(f"beta parameters must be numbers, not {text!r}") from None
        if not (alpha > 0 and beta > 0 and math.isfinite(alpha) and math.isfinite(beta)):
            raise ValueError(f"beta parameters must be positive, not {text!r}")
        return cls(alpha, beta)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.beta(self.alpha, self.beta, n)

    def densities(self, c: np.ndarray) -> np.ndarray:
        """Unnormalised density at each of `c`; only ratios of its integrals are used."""
        inside = (c > 0) & (c < 1)
        safe = np.where(inside, c, 0.5)
        return np.where(inside, np.exp((self.alpha - 1) * np.log(safe) + (self.beta - 1) * np.log(1 - safe)), 0.0)

    def __str__(self) -> str:
        return f"beta:{self.alpha:g}:{self.beta:g}"


@lru_cache(maxsize=4096)  # a Monte Carlo asks about the same few thresholds thousands of times
def true_accuracy_between(
    curve: Curve,
    distribution: ConfidenceDistribution,
    low: float,
    high: float = 1.0,
    *,
    delta: float = 0.0,
    steps: int = 4000,
) -> float | None:
    """E[accuracy(c) | low ≤ c < high]: the average over the band, by the density, not its midpoint."""
    low, high = max(0.0, low), min(1.0, high)
    if low >= high:
        return curve.accuracy(min(low, 1.0), delta) if low >= 1 else None
    c = low + (np.arange(steps) + 0.5) * ((high - low) / steps)
    density = distribution.densities(c)
    mass = float(density.sum())
    return float((density * curve.accuracies(c, delta)).sum()) / mass if mass > 0 else None


def true_accuracy_above(
    curve: Curve, distribution: ConfidenceDistribution, threshold: float, *, delta: float = 0.0
) -> float | None:
    """E[accuracy(c) | c ≥ threshold]; None when no confidence reaches the threshold."""
    return true_accuracy_between(curve, distribution, threshold, 1.0, delta=delta)


@lru_cache(maxsize=4096)
def true_share_above(distribution: ConfidenceDistribution, threshold: float, steps: int = 4000) -> float:
    """P(c ≥ threshold): the share of outputs a threshold lets through (before audits)."""
    points = (np.arange(steps) + 0.5) / steps
    density = distribution.densities(points)
    total = float(density.sum())
    return float(density[points >= threshold].sum()) / total if total else 0.0


@dataclass(frozen=True)
class SimulatedOutput:
    index: int
    confidence: float
    correct: bool
    drifted: bool
    forced: bool = False


Seed = int | tuple[int, ...]


def generator(seed: Seed) -> np.random.Generator:
    """numpy's generator for a seed; a tuple names an independent stream (the seed, then what it draws)."""
    parts = seed if isinstance(seed, tuple) else (seed,)
    return np.random.default_rng([part % 2**64 for part in parts])  # any int, negative ones too


@dataclass(frozen=True)
class Batch:
    """Simulated outputs as arrays, one entry per output: what `generate` returns, in the form a Monte Carlo
    of thousands of seeds can afford."""

    confidence: np.ndarray
    correct: np.ndarray
    drifted: np.ndarray
    forced: np.ndarray


def draw(
    *,
    seed: Seed,
    n: int,
    curve: Curve,
    distribution: ConfidenceDistribution,
    drift_after: int | None = None,
    drift_delta: float = 0.0,
    forced_share: float = 0.0,
    forced_lift: float = 0.0,
    start: int = 0,
) -> Batch:
    """`n` outputs with their true correctness (see `generate`), as arrays."""
    rng = generator(seed)
    # Rounded like a model's reported confidence; keeps printed tables readable.
    confidence = np.round(distribution.sample(rng, n), 4)
    drifted = np.zeros(n, dtype=bool) if drift_after is None else start + np.arange(n) >= drift_after
    forced = rng.random(n) < forced_share
    accuracy = curve.accuracies(confidence, np.where(drifted, drift_delta, 0.0))
    accuracy = np.where(forced, np.minimum(1.0, accuracy + forced_lift), accuracy)
    return Batch(confidence, rng.random(n) < accuracy, drifted, forced)


def generate(
    *,
    seed: Seed,
    n: int,
    curve: Curve,
    distribution: ConfidenceDistribution,
    drift_after: int | None = None,
    drift_delta: float = 0.0,
    forced_share: float = 0.0,
    forced_lift: float = 0.0,
    start: int = 0,
) -> list[SimulatedOutput]:
    """`n` outputs with their true correctness. From output `drift_after` on, accuracy is lower by
    `drift_delta`. A share `forced_share` is forced to review by a rule, and is `forced_lift` more accurate.
    `start` numbers the outputs when a simulation is generated in parts; each part needs its own seed."""
    batch = draw(
        seed=seed,
        n=n,
        curve=curve,
        distribution=distribution,
        drift_after=drift_after,
        drift_delta=drift_delta,
        forced_share=forced_share,
        forced_lift=forced_lift,
        start=start,
    )
    columns = (batch.confidence.tolist(), batch.correct.tolist(), batch.drifted.tolist(), batch.forced.tolist())
    return [SimulatedOutput(start + offset, *row) for offset, row in enumerate(zip(*columns, strict=True))]


@dataclass(frozen=True)
class Verdicts:
    """The verdicts on outputs no rule forced, as arrays: what `observe` returns minus the forced ones."""

    confidence: np.ndarray
    correct: np.ndarray
    review_probability: np.ndarray

    def __add__(self, other: Verdicts) -> Verdicts:
        pairs = zip(self.columns, other.columns, strict=True)
        return Verdicts(*(np.concatenate([mine, theirs]) for mine, theirs in pairs))

    @property
    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.confidence, self.correct, self.review_probability


def route(batch: Batch, *, threshold: float | None, audit_rate: float, seed: Seed) -> Verdicts:
    """The verdicts a fixed policy gets on outputs no rule forced (forced ones are always reviewed, and the
    core leaves them out): by the gate's rule, below the threshold always, at or above it `audit_rate` of the
    time; in the arrays' form."""
    above = np.zeros(len(batch.confidence), dtype=bool) if threshold is None else batch.confidence >= threshold
    audited = generator(seed).random(len(above)) < audit_rate
    kept = ~batch.forced & (~above | audited)
    probability = np.where(above, audit_rate, 1.0)
    return Verdicts(batch.confidence[kept], batch.correct[kept], probability[kept])


def strata_of_arrays(verdicts: Verdicts) -> dict[int, Stratum]:
    """`evidence.strata_of` for verdicts held in arrays: the same strata, to the last bit and in the same
    order (summed in the verdicts' order, keyed in the order each stratum first appears)."""
    confidence, correct, probability = verdicts.columns
    if not len(confidence):
        return {}
    percent = np.clip((confidence * 100 + BUCKET_EPSILON).astype(np.int64), 0, 100)
    outputs = np.bincount(percent, weights=1 / probability, minlength=101)
    reviewed = np.bincount(percent, minlength=101)
    right = np.bincount(percent, weights=correct.astype(float), minlength=101)
    confidence_sum = np.bincount(percent, weights=confidence, minlength=101)
    present, first = np.unique(percent, return_index=True)
    return {
        int(p): Stratum(float(outputs[p]), int(reviewed[p]), int(right[p]), float(confidence_sum[p]))
        for p in present[np.argsort(first)]
    }


def route_in_memory(
    confidence: float, *, threshold: float | None, audit_rate: float, rng: random.Random
) -> tuple[bool, float]:
    """(reviewed, review_probability) by the same rule and random draws as the gate, without a database."""
    if threshold is None or confidence < threshold:
        return True, 1.0
    return rng.random() < audit_rate, audit_rate


def observe(
    outputs: Iterable[SimulatedOutput], *, threshold: float | None, audit_rate: float, rng: random.Random
) -> list[Observation]:
    """The verdicts a fixed policy gets: forced outputs always reviewed, the rest routed by the gate's rule."""
    verdicts = []
    for output in outputs:
        if output.forced:
            verdicts.append(Observation(output.confidence, output.correct, 1.0, forced=True))
            continue
        reviewed, probability = route_in_memory(output.confidence, threshold=threshold, audit_rate=audit_rate, rng=rng)
        if reviewed:
            verdicts.append(Observation(output.confidence, output.correct, probability))
    return verdicts


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One simulated situation: how outputs behave, and which question the core is asked.

    kind "recommend": `n` outputs, all reviewed (forced ones included, which the core must leave out); is the
    recommended threshold truly at least `target` accurate? kind "after_autonomy": `n` reviewed outputs, then
    a threshold applied (`applied`, or else the recommendation), then `n_after` more outputs under it with
    `audit_rate` audits; when the applied threshold is truly safe, does the recommendation over all the
    evidence keep it (recommend it or lower), or withdraw autonomy (recommend nothing)? kind "guard": audits of
    outputs above a
    threshold, `audits` of them, whose accuracy is exactly `target` until audit `drift_after`, then `drop`
    lower; when does the guard fire?
    """

    name: str
    description: str
    kind: str = "recommend"
    curve: str = DEFAULT_CURVE
    distribution: str = DEFAULT_DISTRIBUTION
    n: int = 2000
    target: float = 0.95
    min_samples: int = 50
    forced_share: float = 0.0
    forced_lift: float = 0.0
    n_after: int = 0
    audit_rate: float = 0.05
    audits: int = 2000
    drift_after: int | None = None
    drop: float = 0.0
    applied: float | None = None


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("default", "the default curve, 2,000 outputs reviewed"),
    Scenario("small", "the default curve, only 400 outputs reviewed", n=400),
    Scenario(
        "plateau",
        "accuracy plateaus at 94.5%, just under the 95% target: no threshold is safe",
        curve="plateau:0.945:0.7",
        n=5000,
    ),
    Scenario(
        "forced",
        "15% of outputs forced to review by a rule, 5 points more accurate than the rest",
        n=3000,
        forced_share=0.15,
        forced_lift=0.05,
    ),
    Scenario(
        "calibrated",
        "a calibrated model (accuracy = confidence), confidences Beta(8, 1), 5,000 outputs",
        curve="linear:0:1",
        distribution="beta:8:1",
        n=5000,
    ),
    Scenario(
        "after_autonomy",
        "3,000 reviewed, the recommendation applied, then 5,000 more with 5% audits above it",
        kind="after_autonomy",
        n=3000,
        n_after=5000,
    ),
    Scenario(
        "after_autonomy_safe",
        "3,000 reviewed, a manager applies 0.85 (truly 97.5% accurate above), then 5,000 more with 5% audits",
        kind="after_autonomy",
        n=3000,
        n_after=5000,
        applied=0.85,
    ),
    Scenario("guard_at_target", "the guard over 2,000 audits at exactly the target", kind="guard"),
    Scenario(
        "guard_drop",
        "the guard, audits at target, then 10 points lower from audit 500",
        kind="guard",
        drift_after=500,
        drop=0.10,
    ),
)


@dataclass
class SeedResult:
    recommended: float | None = None
    truth: float | None = None  # true accuracy at or above the recommendation
    auto_share: float = 0.0  # share of outputs the recommendation would auto-process (before audits)
    kept: bool | None = None  # after_autonomy: a truly safe applied threshold recommended again, or a lower one
    withdrawn: bool | None = None  # after_autonomy: a truly safe applied threshold, and nothing recommended now
    fired_at: int | None = None  # guard: audits until it fired
    drift_after: int | None = None


@dataclass
class ScenarioSummary:
    scenario: Scenario
    seeds: int
    results: list[SeedResult] = field(default_factory=list)

    @property
    def recommended(self) -> int:
        return sum(1 for r in self.results if r.recommended is not None)

    @property
    def unsafe(self) -> int:
        target = self.scenario.target
        return sum(1 for r in self.results if r.recommended is not None and (r.truth or 0.0) < target)

    @property
    def safe_share(self) -> float | None:
        """Share of recommendations truly at least target accurate (None when nothing was recommended)."""
        return 1 - self.unsafe / self.recommended if self.recommended else None

    @property
    def unsafe_share(self) -> float:
        """Unsafe recommendations per seed: what the guarantee bounds by 5%."""
        return self.unsafe / self.seeds if self.seeds else 0.0

    @property
    def mean_auto_share(self) -> float:
        return statistics.fmean(r.auto_share for r in self.results) if self.results else 0.0

    @property
    def kept_share(self) -> float | None:
        judged = [r.kept for r in self.results if r.kept is not None]
        return sum(judged) / len(judged) if judged else None

    @property
    def withdrawn_share(self) -> float | None:
        judged = [r.withdrawn for r in self.results if r.withdrawn is not None]
        return sum(judged) / len(judged) if judged else None

    @property
    def false_alarm_share(self) -> float | None:
        if self.scenario.kind != "guard":
            return None
        limit = self.scenario.drift_after if self.scenario.drift_after is not None else self.scenario.audits
        return sum(1 for r in self.results if r.fired_at is not None and r.fired_at <= limit) / self.seeds

    @property
    def median_delay(self) -> float | None:
        """Median audits of drifted outputs until the guard fired (runs that never fired count as the rest)."""
        if self.scenario.kind != "guard" or self.scenario.drift_after is None:
            return None
        start = self.scenario.drift_after
        delays = [
            (r.fired_at - start) if r.fired_at is not None else math.inf
            for r in self.results
            if r.fired_at is None or r.fired_at > start
        ]
        return statistics.median(delays) if delays else None


def _recommend(scenario: Scenario, verdicts: Verdicts) -> float | None:
    return recommend(strata_of_arrays(verdicts), target=scenario.target, min_samples=scenario.min_samples).threshold


# Independent random streams of one seed.
LATER, GATE = 1, 2


def _recommend_seed(scenario: Scenario, seed: int) -> SeedResult:
    curve, distribution = Curve.parse(scenario.curve), ConfidenceDistribution.parse(scenario.distribution)
    batch = draw(
        seed=seed,
        n=scenario.n,
        curve=curve,
        distribution=distribution,
        forced_share=scenario.forced_share,
        forced_lift=scenario.forced_lift,
    )
    verdicts = route(batch, threshold=None, audit_rate=1.0, seed=seed)
    threshold = _recommend(scenario, verdicts)
    result = SeedResult(recommended=threshold)
    if threshold is not None:
        result.truth = true_accuracy_above(curve, distribution, threshold)
        result.auto_share = true_share_above(distribution, threshold)
    applied = scenario.applied if scenario.applied is not None else threshold
    if scenario.kind == "after_autonomy" and applied is not None:
        later = draw(seed=(seed, LATER), n=scenario.n_after, curve=curve, distribution=distribution)
        verdicts += route(later, threshold=applied, audit_rate=scenario.audit_rate, seed=(seed, GATE))
        again = _recommend(scenario, verdicts)
        if (true_accuracy_above(curve, distribution, applied) or 0.0) >= scenario.target:
            result.kept = again is not None and again <= applied + 1e-9
            result.withdrawn = again is None
        result.recommended = again
        result.truth = true_accuracy_above(curve, distribution, again) if again is not None else None
        result.auto_share = true_share_above(distribution, again) if again is not None else 0.0
    return result


def _guard_seed(scenario: Scenario, seed: int) -> SeedResult:
    monitor = RegressionMonitor(target=scenario.target, min_samples=scenario.min_samples)
    accuracy = np.full(scenario.audits, scenario.target)
    if scenario.drift_after is not None:
        accuracy[scenario.drift_after :] -= scenario.drop
    # The monitor only reads its observations: two suffice for thousands of audits.
    right, wrong = Observation(0.99, True, 0.05), Observation(0.99, False, 0.05)
    for audit, correct in enumerate((generator(seed).random(scenario.audits) < accuracy).tolist(), start=1):
        if monitor.update(right if correct else wrong):
            return SeedResult(fired_at=audit, drift_after=scenario.drift_after)
    return SeedResult(drift_after=scenario.drift_after)


RUNNERS: dict[str, Callable[[Scenario, int], SeedResult]] = {
    "recommend": _recommend_seed,
    "after_autonomy": _recommend_seed,
    "guard": _guard_seed,
}


def run_scenario(scenario: Scenario, seeds: int, *, first_seed: int = 1) -> ScenarioSummary:
    """The scenario over `seeds` seeds, in memory."""
    summary = ScenarioSummary(scenario, seeds)
    runner = RUNNERS[scenario.kind]
    summary.results = [runner(scenario, seed) for seed in range(first_seed, first_seed + seeds)]
    return summary


def scenario_named(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise ValueError(f"no scenario named {name!r}; known: {', '.join(s.name for s in SCENARIOS)}")


def with_options(scenario: Scenario, **changes: object) -> Scenario:
    return replace(scenario, **{k: v for k, v in changes.items() if v is not None})


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _delay(value: float | None) -> str:
    return "—" if value is None else "never" if math.isinf(value) else f"{value:g}"


TABLE_COLUMNS = (
    ("scenario", "the situation simulated (below)"),
    ("seeds", "seeds run"),
    ("recommended", "seeds with a recommended threshold"),
    ("safe", "recommendations truly at least target accurate"),
    ("unsafe/seed", "unsafe recommendations per seed: the guarantee bounds it by 5%"),
    ("auto", "mean share of outputs the recommendation auto-processes (0 when none)"),
    ("kept", "after autonomy: truly safe applied thresholds recommended again, or a lower one"),
    ("withdrawn", "after autonomy: truly safe applied thresholds for which nothing is recommended any more"),
    ("false alarms", "guard runs that fired while accuracy was at target (2,000 audits, or until the drop)"),
    ("median delay", "guard: median audits after the drop until it fires"),
)


def summary_table(summaries: list[ScenarioSummary]) -> list[str]:
    """The Monte Carlo's results, one row per scenario, then what each column and scenario means."""
    rows = []
    for s in summaries:
        # A guard scenario asks nothing of the recommendation: its columns stay empty rather than read 0.
        recommends = s.scenario.kind != "guard"
        recommendation = (str(s.recommended), _share(s.safe_share), _share(s.unsafe_share), _share(s.mean_auto_share))
        rows.append(
            (
                s.scenario.name,
                str(s.seeds),
                *(recommendation if recommends else ("—",) * 4),
                _share(s.kept_share),
                _share(s.withdrawn_share),
                _share(s.false_alarm_share),
                _delay(s.median_delay),
            )
        )
    header = tuple(name for name, _ in TABLE_COLUMNS)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    width = max(len(name) for name, _ in TABLE_COLUMNS)
    lines += ["", *(f"{name:>{width}}: {meaning}" for name, meaning in TABLE_COLUMNS), ""]
    width = max(len(s.scenario.name) for s in summaries)
    lines += [f"{s.scenario.name:>{width}}: {s.scenario.description}" for s in summaries]
    return lines
