"""SIMULATION: synthetic outputs with a known accuracy curve through the real gate, reviewed truthfully."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from reviewconsole.autonomy import montecarlo, simulation
from reviewconsole.autonomy.models import AutonomyPolicy, PolicyMode
from reviewconsole.autonomy.recommendation import recommend
from reviewconsole.autonomy.services import PolicyError, gate_decisions_delete, policy_ensure, policy_update


def _pct(value: float | None) -> str:
    return "    n/a" if value is None else f"{value * 100:6.1f}%"


def _threshold(value: str) -> float | None:
    return None if value.lower() in ("none", "null", "") else float(value)


class Command(BaseCommand):
    help = (
        "SIMULATION — writes synthetic data. Generates outputs whose true correctness follows a known "
        "accuracy-versus-confidence curve, sends each through the real autonomy gate, and has a simulated "
        "reviewer decide the reviewed ones truthfully (correct ones approved, wrong ones edited or rejected). "
        "Everything goes to the output type sim_<TYPE> (the sim_ prefix is always added), whose earlier "
        "simulated data is deleted first unless --keep. No flows run and no review items are created. "
        "Prints the recommendation and the statistics next to the true values. Deterministic given --seed. "
        "With --seeds N, writes nothing: runs N seeds of each built-in scenario in memory through the "
        "statistics core and prints, per scenario, how often the recommendation was truly safe, the share "
        "auto-processed, and the guard's false alarms and detection delay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--type", default="invoice", help="Output type; written as sim_<TYPE>. Default: invoice.")
        parser.add_argument("--n", type=int, default=5000, help="Number of outputs. Default: 5000.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed. Default: 1.")
        parser.add_argument(
            "--curve",
            default=simulation.DEFAULT_CURVE,
            help="True accuracy by confidence: logistic:K:MID (1/(1+exp(-K(c-MID)))) or linear:A:B (A+B·c). "
            f"Default: {simulation.DEFAULT_CURVE}, 95%% accurate at c≈0.80.",
        )
        parser.add_argument(
            "--confidence-dist",
            default=simulation.DEFAULT_DISTRIBUTION,
            help=f"Confidence distribution: beta:A:B or uniform. Default: {simulation.DEFAULT_DISTRIBUTION}.",
        )
        parser.add_argument(
            "--threshold",
            type=_threshold,
            default=None,
            help="Starting threshold, or none (review all). Default: none.",
        )
        parser.add_argument("--audit-rate", type=float, default=0.05, help="Audit rate. Default: 0.05.")
        # None means "the default": with --seeds, each scenario's own.
        parser.add_argument("--target", type=float, default=None, help="Target accuracy. Default: 0.95.")
        parser.add_argument("--min-samples", type=int, default=None, help="Minimum samples. Default: 50.")
        parser.add_argument(
            "--mode", choices=[m.value for m in PolicyMode], default=PolicyMode.MANUAL, help="Policy mode."
        )
        parser.add_argument(
            "--grant-after",
            type=int,
            default=None,
            help="After this many outputs, apply the recommendation as a manager would, then continue.",
        )
        parser.add_argument(
            "--drift-after",
            type=int,
            default=None,
            help="From this output on, true accuracy is lower by --drift-delta.",
        )
        parser.add_argument("--drift-delta", type=float, default=0.2, help="Accuracy drop under drift. Default: 0.2.")
        parser.add_argument(
            "--days", type=float, default=0.0, help="Spread outputs over the last DAYS days (for trends). Default: 0."
        )
        parser.add_argument(
            "--check-every", type=int, default=50, help="Run the regression guard/autopilot every N outputs."
        )
        parser.add_argument("--no-guard", action="store_true", help="Do not run the regression guard and autopilot.")
        parser.add_argument("--keep", action="store_true", help="Keep earlier simulated data of the type.")
        monte_carlo = parser.add_argument_group("Monte Carlo (in memory, writes nothing)")
        monte_carlo.add_argument(
            "--seeds",
            type=int,
            default=None,
            help="Run this many seeds of each scenario in memory and print one table; --seed is the first seed, "
            "--target and --min-samples replace every scenario's own (0.95, 50).",
        )
        monte_carlo.add_argument(
            "--scenario",
            action="append",
            default=None,
            metavar="NAME",
            help="With --seeds: only this scenario (repeatable). Default: all of "
            f"{', '.join(s.name for s in montecarlo.SCENARIOS)}.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["seeds"] is not None:
            self._monte_carlo(options)
            return
        options["target"] = 0.95 if options["target"] is None else options["target"]
        options["min_samples"] = 50 if options["min_samples"] is None else options["min_samples"]
        try:
            curve = simulation.Curve.parse(options["curve"])
            distribution = simulation.ConfidenceDistribution.parse(options["confidence_dist"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        if options["n"] <= 0:
            raise CommandError("--n must be positive")
        output_type = simulation.sim_type(options["type"])
        seed = options["seed"]
        if not options["keep"]:
            with transaction.atomic():
                gate_decisions_delete(output_type=output_type)
                AutonomyPolicy.objects.filter(output_type=output_type).delete()
        policy_ensure(output_type=output_type)
        try:
            setup = policy_update(
                output_type=output_type,
                changes={
                    "threshold": options["threshold"],
                    "audit_rate": options["audit_rate"],
                    "target_accuracy": options["target"],
                    "min_samples": options["min_samples"],
                    "mode": options["mode"],
                },
                by=None,
                reason="Simulation set-up",
            )
        except PolicyError as error:
            raise CommandError(str(error)) from None

        drift_delta = options["drift_delta"] if options["drift_after"] is not None else 0.0
        outputs = simulation.generate(
            seed=seed,
            n=options["n"],
            curve=curve,
            distribution=distribution,
            drift_after=options["drift_after"],
            drift_delta=drift_delta,
        )
        gate_rng = random.Random(f"gate:{seed}")  # noqa: S311 - a reproducible simulation, not security
        clock: dict[str, Any] = {}
        if options["days"] > 0:
            clock = {
                "clock_start": timezone.now() - timedelta(days=options["days"]),
                "spacing": timedelta(days=options["days"]) / options["n"],
            }
        if clock:
            simulation.stamp(setup, clock["clock_start"] - timedelta(seconds=2))
        run = {"output_type": output_type, "gate_rng": gate_rng, "check_every": options["check_every"]}
        run |= {"check": not options["no_guard"], **clock}
        split = options["grant_after"] if options["grant_after"] is not None else len(outputs)
        result = simulation.run(outputs=outputs[:split], **run)
        granted = None
        if split < len(outputs):
            granted = recommend(output_type)
            if granted["threshold"] is not None:
                grant = policy_update(
                    output_type=output_type,
                    changes={"threshold": granted["threshold"]},
                    by=None,
                    reason=f"Simulation: a manager applies the recommendation after {split} outputs",
                )
                if clock:
                    simulation.stamp(
                        grant, clock["clock_start"] + clock["spacing"] * (split - 1) + simulation.VERDICT_DELAY
                    )
            result = simulation.run(outputs=outputs[split:], result=result, **run)
        self._report(options, output_type, curve, distribution, drift_delta, result, granted, split)

    def _report(
        self,
        options: dict[str, Any],
        output_type: str,
        curve: simulation.Curve,
        distribution: simulation.ConfidenceDistribution,
        drift_delta: float,
        result: simulation.SimulationResult,
        granted: dict[str, Any] | None,
        split: int,
    ) -> None:
        out = self.stdout.write
        rows = simulation.summary_rows(
            output_type=output_type, curve=curve, distribution=distribution, drift_delta=drift_delta
        )
        summary, rec = rows["summary"], rows["recommendation"]
        policy = policy_ensure(output_type=output_type)
        out(self.style.WARNING(f"SIMULATION — synthetic data in output type {output_type}"))
        out(
            f"seed {options['seed']}, {result.outputs} outputs, curve {curve}, confidence {distribution}, "
            f"audit {options['audit_rate']:.0%}, target {options['target']:.0%}, min samples {options['min_samples']}"
        )
        if options["drift_after"] is not None:
            out(f"drift: accuracy lowered by {drift_delta:.2f} from output {options['drift_after']}")
        out("")
        out(f"routed to review   {result.reviewed:>7} (audit samples {result.audits})")
        out(f"auto-approved      {result.auto:>7}")
        out(
            f"reviewed accuracy  {_pct(summary['accuracy'])}  CI {_pct(summary['ci_low'])} {_pct(summary['ci_high'])}"
            f"  n={summary['reviewed']}"
        )
        realised = result.auto_correct / result.auto if result.auto else None
        out(
            f"auto accuracy      estimate {_pct(summary['auto_accuracy_estimate'])}  CI "
            f"{_pct(summary['auto_accuracy_ci_low'])} {_pct(summary['auto_accuracy_ci_high'])}  "
            f"n_eff={summary['auto_accuracy_n_eff']:.0f}   true (realised) {_pct(realised)}"
        )
        if granted is not None and granted["threshold"] is None:
            out(f"nothing granted after {split}: {granted['reason']}")
        elif granted is not None:
            truth = simulation.true_accuracy_above(curve, distribution, granted["threshold"])
            out(
                f"granted after {split}: threshold {granted['threshold']}  estimate {_pct(granted['accuracy'])} "
                f"(lower bound {_pct(granted['ci_low'])})  true {_pct(truth)}"
            )
        truth = rows["true_accuracy_at_recommendation"]
        out(
            f"recommendation now threshold {rec['threshold']}  estimate {_pct(rec['accuracy'])} "
            f"(lower bound {_pct(rec['ci_low'])}, n={rec['n']})  true accuracy at or above {_pct(truth)}"
        )
        out(f"  {rec['reason']}")
        out(f"policy threshold now {policy.threshold}")
        for index, change in result.change_points:
            out(f"  after output {index}: {change.changes} — {change.reason}")
        out("")
        out("calibration  band        n   observed      95% CI           true")
        for band in rows["bands"]:
            true = _pct(band["true_accuracy"])
            if band["true_accuracy_drifted"] is not None:
                true += f" ({_pct(band['true_accuracy_drifted']).strip()} drifted)"
            out(
                f"             {band['low']:.1f}-{band['high']:.1f} {band['n']:>6}  {_pct(band['accuracy'])}  "
                f"{_pct(band['ci_low'])} {_pct(band['ci_high'])}  {true}"
            )

    def _monte_carlo(self, options: dict[str, Any]) -> None:
        seeds, target, min_samples = options["seeds"], options["target"], options["min_samples"]
        if seeds < 1:
            raise CommandError(f"--seeds must be at least 1, not {seeds}")
        if target is not None and not 0 < target < 1:
            raise CommandError(f"--target must be between 0 and 1 (exclusive), not {target}")
        if min_samples is not None and min_samples < 1:
            raise CommandError(f"--min-samples must be at least 1, not {min_samples}")
        try:
            chosen = [montecarlo.scenario_named(name) for name in dict.fromkeys(options["scenario"] or [])]
        except ValueError as error:
            raise CommandError(str(error)) from None
        scenarios = [
            montecarlo.with_options(scenario, target=target, min_samples=min_samples)
            for scenario in chosen or montecarlo.SCENARIOS
        ]
        out = self.stdout.write
        out(f"SIMULATION in memory — {seeds} seeds per scenario from seed {options['seed']}; nothing is written")
        for line in montecarlo.summary_table(
            [montecarlo.run_scenario(scenario, seeds, first_seed=options["seed"]) for scenario in scenarios]
        ):
            out(line)
