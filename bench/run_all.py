"""Every benchmark of `bench/`, one after the other, then a summary of their figures against the design's targets.

    .venv/bin/python bench/run_all.py [--quick] [--no-redis] [NAME ...]      (`make bench` = --quick)

Runs, each as a subprocess whose output streams through: bench/engine.py (engine overhead),
bench/reviews.py (reviewer pages at scale), bench/resume.py (decision to flow resumed), bench/stats.py
(dashboard statistics), bench/exports.py (server memory of the streamed exports, on SQLite and PostgreSQL)
and bench/scale.py (throughput with 1 and 2 workers). NAMEs (engine, reviews, resume, stats, exports, scale) run
only those. Each script's last line holds
its figures as key=value pairs; the summary compares them with the targets of DESIGN.md "Performance targets".
A script that is missing is reported as "not run"; one that fails or prints no figure as "failed", and the
runner exits 1 after the summary. A missed target does not change the exit status: on a shared machine a
figure can miss by noise, so read the table.

Services on a fresh clone: reviews, resume and stats need PostgreSQL; with DATABASE_URL unset they get
postgres://postgres@127.0.0.1:5432/postgres, and each keeps its data in a database of its own on that server
(named in its --help). engine.py takes
DATABASE_URL as given (unset: a SQLite file under /tmp). The Redis measurements (engine and resume) use
REDIS_URL, else redis://127.0.0.1:6379/9 when something listens there; --no-redis leaves them out.

Time on 2 shared cores (measured under a load average of 5): --quick about 9 minutes, and about 15 the first
time, when reviews.py generates its 1.1M-item data set (kept for later runs); without --quick, with
stats.py generating 1M gate decisions every run, expect roughly twice that. --quick passes --quick to every
script: fewer samples, and stats.py a smaller data set (200k gate decisions instead of 1M), so check a
figure that matters again without it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BASE_DIR, LOCAL_POSTGRES_URL, LOCAL_REDIS_URL, fmt, print_table


@dataclass(frozen=True)
class Metric:
    key: str
    limit: float | None = None  # None: reported without a target
    inclusive: bool = False  # the target is "at most" the limit rather than "under" it
    unit: str = " ms"

    @property
    def target(self) -> str:
        if self.limit is None:
            return "-"
        return f"{'<=' if self.inclusive else '<'} {self.limit:g}{self.unit}"

    def met(self, value: float) -> bool:
        assert self.limit is not None
        return value <= self.limit if self.inclusive else value < self.limit


@dataclass(frozen=True)
class Benchmark:
    name: str
    postgres: bool  # needs PostgreSQL: gets the local server when DATABASE_URL is unset
    redis: bool  # measures Redis too: gets REDIS_URL (others do not, so they queue nothing there)
    metrics: tuple[Metric, ...]

    @property
    def script(self) -> Path:
        return BASE_DIR / "bench" / f"{self.name}.py"


BENCHMARKS = (
    Benchmark(
        "engine", postgres=False, redis=True, metrics=(Metric("engine_overhead_ratio", 2.0, inclusive=True, unit=""),)
    ),
    Benchmark("reviews", postgres=True, redis=False, metrics=(Metric("reviews_p95_max_ms", 50.0),)),
    Benchmark(
        "resume",
        postgres=True,
        redis=True,
        metrics=(
            Metric("resume_p50_ms_orm", 1000.0),
            Metric("resume_p95_ms_orm"),
            Metric("resume_p50_ms_redis", 200.0),
            Metric("resume_p95_ms_redis"),
            Metric("resume_backlog_p50_ms_orm", 1000.0),
            Metric("resume_backlog_p95_ms_orm"),
            Metric("resume_backlog_p50_ms_redis", 1000.0),
            Metric("resume_backlog_p95_ms_redis"),
        ),
    ),
    Benchmark("stats", postgres=True, redis=False, metrics=(Metric("stats_p95_max_ms", 100.0),)),
    Benchmark(
        "exports",
        postgres=True,
        redis=False,
        metrics=(Metric("exports_growth_max_mb", 200.0, unit=" MB"), Metric("exports_peak_rss_mb", unit=" MB")),
    ),
    Benchmark(
        "scale",
        postgres=True,
        redis=True,
        metrics=(
            Metric("scale_pause_fps_1", unit=" flows/s"),
            Metric("scale_pause_ratio_2", unit=""),
            Metric("scale_complete_fps_1", unit=" flows/s"),
            Metric("scale_complete_ratio_2", unit=""),
        ),
    ),
)


@dataclass
class Outcome:
    benchmark: Benchmark
    status: str  # "ok", "not run", "failed"
    figures: dict[str, float]
    seconds: float = 0.0
    note: str = ""


def redis_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def parse_figures(line: str) -> dict[str, float]:
    """`key=value key=value` → floats; tokens that are not such a pair are ignored."""
    figures = {}
    for token in line.split():
        key, sep, value = token.partition("=")
        if sep:
            try:
                figures[key] = float(value)
            except ValueError:
                continue
    return figures


def benchmark_env(benchmark: Benchmark, redis_url: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if benchmark.postgres and not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = LOCAL_POSTGRES_URL
    env.pop("REDIS_URL", None)
    if benchmark.redis and redis_url:
        env["REDIS_URL"] = redis_url
    return env


def run_benchmark(benchmark: Benchmark, *, quick: bool, redis_url: str) -> Outcome:
    """Run one script, echoing its stdout (stderr passes straight through) and keeping its last line."""
    relative = benchmark.script.relative_to(BASE_DIR)
    if not benchmark.script.exists():
        return Outcome(benchmark, "not run", {}, note=f"{relative} is missing")
    args = ["--quick"] if quick else []
    print(f"\n===== {' '.join([str(relative), *args])}", flush=True)
    started = time.monotonic()
    last = ""
    with subprocess.Popen(
        [sys.executable, str(benchmark.script), *args],
        cwd=BASE_DIR,
        env=benchmark_env(benchmark, redis_url),
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.strip():
                last = line
    seconds = time.monotonic() - started
    figures = parse_figures(last)
    if process.returncode != 0:
        return Outcome(benchmark, "failed", figures, seconds, f"exit status {process.returncode}")
    if not any(metric.key in figures for metric in benchmark.metrics):
        return Outcome(benchmark, "failed", figures, seconds, "no figure on the last line")
    return Outcome(benchmark, "ok", figures, seconds)


def verdict(outcome: Outcome, metric: Metric) -> str:
    if outcome.status != "ok":
        return outcome.status
    value = outcome.figures.get(metric.key)
    if value is None:
        return "not measured"
    if metric.limit is None:
        return "info"
    return "met" if metric.met(value) else "missed"


def print_summary(outcomes: list[Outcome], *, quick: bool, redis_url: str) -> None:
    rows = [
        [
            outcome.benchmark.name,
            metric.key,
            fmt(outcome.figures.get(metric.key), 2),
            metric.target,
            verdict(outcome, metric),
        ]
        for outcome in outcomes
        for metric in outcome.benchmark.metrics
    ]
    mode = "--quick" if quick else "full"
    print(f"\n===== Summary ({mode}; Redis: {redis_url or 'not measured'})")
    print_table(["benchmark", "metric", "value", "target", "verdict"], rows)
    for outcome in outcomes:
        took = f"{outcome.seconds / 60:.1f} min" if outcome.seconds else "-"
        note = f"; {outcome.note}" if outcome.note else ""
        print(f"  {outcome.benchmark.name}: {outcome.status}, {took}{note}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = [benchmark.name for benchmark in BENCHMARKS]
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"only these: {', '.join(names)}")
    parser.add_argument("--quick", action="store_true", help="each script's --quick (about 9 minutes in all)")
    parser.add_argument("--no-redis", action="store_true", help="leave out the Redis measurements")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(names)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    redis_url = ""
    if not args.no_redis:
        candidate = os.environ.get("REDIS_URL") or LOCAL_REDIS_URL
        if redis_reachable(candidate):
            redis_url = candidate
        else:
            print(f"Redis at {candidate} does not answer: Redis measurements left out", flush=True)
    chosen = [benchmark for benchmark in BENCHMARKS if not args.names or benchmark.name in args.names]
    outcomes = [run_benchmark(benchmark, quick=args.quick, redis_url=redis_url) for benchmark in chosen]
    print_summary(outcomes, quick=args.quick, redis_url=redis_url)
    return 1 if any(outcome.status == "failed" for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
