"""Run the rate controller through the simulator on a whole grid and check it against its targets.

    python -m benchmarks.ratesim                   # the whole grid (both demand models)
    python -m benchmarks.ratesim --quick           # a small subset, for a smoke run
    python -m benchmarks.ratesim --demand storm --plans 600,2400 --procs 4,8
    python -m benchmarks.ratesim --controller off  # the pacing-off baseline against itself

Every cell is played three times on the fake clock of ``benchmarks._ratesim``, with the
same seed: with the client's controller (``sarvam_async._ratecontrol``), with pacing off
(``adaptive_rate=False``), and, for a limited plan, with pacing off against an unlimited
account (the demand on its own). Cells run in parallel over processes; the output is a
pure function of the options and ``--seed``.

Columns: **used**, accepted calls / (plan per second x the time until the last process
finished), marked ``d`` where the demand on its own stays under 1.25x the plan (the limit
cannot be filled; such cells are left out of the "used" targets); **429 pace**, the share
of answers that were the bucket's 429s, counting only calls sent after the first burst
(after 5 s or 5 % of the run, whichever is longer); **429 all**, every 429 (the bucket's
and the injected faults') over every answer; **x off**, wall time over pacing off's;
**fair**, the latest over the earliest finish among processes with equal shares, minus 1;
**failed**, calls that ran out of retries (``+N j``: jobs that ran out of goes).

Workloads: a limited cell is sized to last ``--span`` simulated seconds at the plan (a
fan-out never has fewer than one job per process, nor so many that, limited by its own
polling, it would run past twice the span); an unlimited cell is the first fan-out row per
process: 100 files in 5 jobs (fan-out) or ``--unlimited-calls`` calls (storm).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from ._ratesim import (
    FILES_PER_JOB,
    JOB_SLOTS,
    OK,
    PACE_429,
    RunResult,
    Scenario,
    adaptive,
    pacing_off,
    poll_schedule,
    simulate,
)

_DEMAND_MARGIN = 1.25
"""A cell is demand-limited when its demand alone stays under this multiple of the plan."""
_BURST_SECONDS = 5.0
_BURST_SHARE = 0.05
_FAULTS_429 = (PACE_429, 2, 3)  # every 429: the bucket's and the two injected kinds


@dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    demand: str
    plan: float | None
    latency: float
    processes: int
    faults: float
    duration: float | None  # fan-out only

    def label(self) -> str:
        plan = "unl" if self.plan is None else f"{self.plan:g}"
        job = "-" if self.duration is None else f"{self.duration:g}"
        return (
            f"{self.demand} plan={plan} lat={self.latency * 1000:g}ms p={self.processes} "
            f"faults={self.faults:.0%} job={job}s"
        )


@dataclass(frozen=True)
class Outcome:
    """One cell's figures."""

    cell: Cell
    used: float | None
    demand_limited: bool
    pace_429_after: float
    all_429: float
    wall: float
    x_off: float
    fairness: float | None
    failed_calls: int
    failed_jobs: int
    events: int
    error: str | None


def _stable_seed(seed: int, cell: Cell) -> int:
    return zlib.crc32(repr((seed, cell)).encode())


def _shares(cell: Cell, args: argparse.Namespace) -> tuple[int, ...]:
    if cell.demand == "fanout":
        if cell.plan is None:
            per = math.ceil(args.unlimited_files / FILES_PER_JOB)
        else:
            duration = cell.duration or 0.0
            polls, done_at = poll_schedule(duration)
            calls = args.span * cell.plan / 60.0 / cell.processes
            per = math.ceil(calls / (4 + polls))
            cycle = done_at + 2 * args.storage_time + (4 + polls) * cell.latency
            per = min(per, JOB_SLOTS * max(1, math.floor(2 * args.span / cycle)))
    elif cell.plan is None:
        per = args.unlimited_calls
    else:
        per = math.ceil(args.span * cell.plan / 60.0 / cell.processes)
    per = max(1, per)
    shares = [per] * cell.processes
    if args.early_share is not None and cell.processes > 1:
        shares[0] = max(1, round(per * args.early_share))
    return tuple(shares)


def _scenario(cell: Cell, args: argparse.Namespace) -> Scenario:
    return Scenario(
        demand="fanout" if cell.demand == "fanout" else "storm",
        plan=cell.plan,
        latency=cell.latency,
        processes=cell.processes,
        fault_share=cell.faults,
        shares=_shares(cell, args),
        job_duration=cell.duration or 0.0,
        callers=args.callers,
        burst=args.burst,
        precise_retry_after=args.precise_retry_after,
        storage_time=args.storage_time,
        start_spread=args.start_spread,
        known_limit=args.known_limit,
        seed=_stable_seed(args.seed, cell),
    )


def _fairness(run: RunResult, early: bool) -> float | None:
    finish = run.finish[1:] if early else run.finish
    if len(finish) < 2 or run.error or min(finish) <= 0:
        return None
    return max(finish) / min(finish) - 1.0


def run_cell(job: tuple[Cell, argparse.Namespace]) -> Outcome:
    """Play one cell with the controller, with pacing off, and its demand alone."""
    cell, args = job
    sc = _scenario(cell, args)
    mine = simulate(sc, pacing_off if args.controller == "off" else adaptive)
    off = simulate(sc, pacing_off)
    demand_limited = False
    used = None
    wall = mine.wall
    if cell.plan is not None:
        alone = simulate(replace(sc, plan=None), pacing_off)
        demand_rate = alone.count((OK,)) / alone.wall if alone.wall > 0 else math.inf
        demand_limited = demand_rate < _DEMAND_MARGIN * cell.plan / 60.0
        used = mine.count((OK,)) / (cell.plan / 60.0 * wall) if wall > 0 else 0.0
    cutoff = max(_BURST_SECONDS, _BURST_SHARE * wall)
    after = mine.answered(cutoff)
    answers = len(mine.answers_kind)
    errors = [f"{name}: {r.error}" for name, r in (("ctl", mine), ("off", off)) if r.error]
    return Outcome(
        cell=cell,
        used=used,
        demand_limited=demand_limited,
        pace_429_after=mine.count((PACE_429,), cutoff) / after if after else 0.0,
        all_429=mine.count(_FAULTS_429) / answers if answers else 0.0,
        wall=wall,
        x_off=wall / off.wall if off.wall > 0 else math.nan,
        fairness=_fairness(mine, args.early_share is not None),
        failed_calls=mine.failed_calls,
        failed_jobs=mine.failed_jobs,
        events=mine.events + off.events,
        error="; ".join(errors) or None,
    )


_TRACED = ("phase", "state", "rate", "pace_per_minute", "window", "background", "hold_until")


def _trace(cell: Cell, args: argparse.Namespace) -> None:
    """Print, every ``--trace`` seconds, each process's traffic and its controller's state."""
    sc = _scenario(cell, args)
    seen = [0]
    last = [-1.0]
    window: dict[int, list[int]] = {}

    def observe(now: float, proc: int, ctl: object, run: RunResult) -> None:
        if now != last[0]:  # the first process of a tick: count the answers since the last
            last[0] = now
            window.clear()
            kinds, procs = run.answers_kind, run.answers_proc
            for i in range(seen[0], len(kinds)):
                counts = window.setdefault(procs[i], [0, 0, 0])
                counts[0 if kinds[i] == OK else 1 if kinds[i] == PACE_429 else 2] += 1
            seen[0] = len(kinds)
        ok, pace, other = window.get(proc, [0, 0, 0])
        state = []
        for name in _TRACED:
            value = getattr(ctl, name, None)
            if value is None or callable(value):
                continue
            if isinstance(value, float):
                value = f"{value - now:+.2f}s" if name == "hold_until" else f"{value:.3g}"
            state.append(f"{name}={getattr(value, 'value', value)}")
        print(
            f"{now:8.1f}s p{proc} ok={ok / args.trace:6.2f}/s 429={pace / args.trace:5.2f}/s "
            f"faults={other / args.trace:5.2f}/s {' '.join(state)}"
        )

    factory = pacing_off if args.controller == "off" else adaptive
    run = simulate(sc, factory, observe=observe, every=args.trace)
    print(f"# {cell.label()}: wall {run.wall:.1f} s, error: {run.error}")


def _floats(text: str) -> list[float | None]:
    out: list[float | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        out.append(None if part in ("unlimited", "unl", "inf", "none") else float(part))
    return out


def _grid(args: argparse.Namespace) -> list[Cell]:
    cells = []
    for demand in args.demand.split(","):
        durations: Iterable[float | None] = args.durations if demand == "fanout" else [None]
        for plan in args.plans:
            for latency in args.latencies:
                for procs in args.procs:
                    for faults in args.faults:
                        for duration in durations:
                            cells.append(
                                Cell(demand, plan, latency / 1000.0, procs, faults, duration)
                            )
    return cells


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f} %"


def _row(o: Outcome) -> str:
    c = o.cell
    used = _pct(o.used) + (" d" if o.demand_limited else "")
    failed = str(o.failed_calls) + (f" +{o.failed_jobs} j" if o.failed_jobs else "")
    if o.error:
        failed += f" ERROR: {o.error}"
    return (
        f"| {c.demand} | {'unlimited' if c.plan is None else f'{c.plan:g}'} "
        f"| {c.latency * 1000:g} | {c.processes} | {c.faults:.0%} "
        f"| {'-' if c.duration is None else f'{c.duration:g}'} | {used} "
        f"| {_pct(o.pace_429_after)} | {_pct(o.all_429)} | {o.wall:.1f} | {o.x_off:.2f} "
        f"| {_pct(o.fairness)} | {failed} |"
    )


@dataclass(frozen=True)
class _Target:
    name: str
    goal: str
    applies: Callable[[Outcome], bool]
    value: Callable[[Outcome], float | None]
    higher_is_better: bool
    bound: float
    show: Callable[[float], str]


def _targets() -> list[_Target]:
    def limited(o: Outcome) -> bool:
        return o.cell.plan is not None

    def one(o: Outcome) -> bool:
        return limited(o) and o.cell.processes == 1

    def many(o: Outcome) -> bool:
        return (
            limited(o) and o.cell.processes in (4, 8) and (o.cell.plan or 0) >= 120
        )  # the multi-process targets: plans of 120/min and above

    def unlimited(faults: bool) -> Callable[[Outcome], bool]:
        return lambda o: o.cell.plan is None and (o.cell.faults > 0) == faults

    def x(v: float) -> str:
        return f"{v:.2f}x"

    return [
        _Target(
            "1 process: limit used (cells not demand-limited)",
            ">= 95 %",
            lambda o: one(o) and not o.demand_limited,
            lambda o: o.used,
            True,
            0.95,
            _pct,
        ),
        _Target(
            "1 process: 429 after the first burst",
            "<= 2 %",
            one,
            lambda o: o.pace_429_after,
            False,
            0.02,
            _pct,
        ),
        _Target(
            "4/8 processes, plan >= 120: limit used (not demand-limited)",
            ">= 85 %",
            lambda o: many(o) and not o.demand_limited,
            lambda o: o.used,
            True,
            0.85,
            _pct,
        ),
        _Target(
            "4/8 processes, plan >= 120: 429 after the first burst",
            "<= 5 %",
            many,
            lambda o: o.pace_429_after,
            False,
            0.05,
            _pct,
        ),
        _Target(
            "4/8 processes, plan >= 120: fairness",
            "<= 20 %",
            many,
            lambda o: o.fairness,
            False,
            0.20,
            _pct,
        ),
        _Target(
            "unlimited, no faults: wall vs pacing off",
            "<= 1.05x",
            unlimited(False),
            lambda o: o.x_off,
            False,
            1.05,
            x,
        ),
        _Target(
            "unlimited, 20 % faults: wall vs pacing off",
            "<= 1.30x",
            unlimited(True),
            lambda o: o.x_off,
            False,
            1.30,
            x,
        ),
        _Target(
            "failed calls (any cell)",
            "0",
            lambda o: True,
            lambda o: float(o.failed_calls),
            False,
            0.0,
            lambda v: f"{v:g}",
        ),
    ]


def _report_targets(outcomes: Sequence[Outcome]) -> list[str]:
    lines = [
        "| target | goal | worst | worst cell | cells missing |",
        "|---|---|---|---|---|",
    ]
    for t in _targets():
        scored = [
            (math.nan if v is None else v, o)
            for o in outcomes
            if t.applies(o) and ((v := t.value(o)) is not None or o.error)
        ]
        if not scored:
            lines.append(f"| {t.name} | {t.goal} | - | no cell in this selection | - |")
            continue
        sign = 1.0 if t.higher_is_better else -1.0
        # a run that never finished is the worst of all
        worst_v, worst = min(scored, key=lambda vo: (vo[1].error is None, sign * vo[0]))
        misses = sum(1 for v, o in scored if sign * (v - t.bound) < -1e-12 or o.error)
        shown = "did not finish" if worst.error else t.show(worst_v)
        lines.append(
            f"| {t.name} | {t.goal} | {shown} | {worst.cell.label()} | {misses}/{len(scored)} |"
        )
    return lines


def _cost(cell: Cell) -> float:
    """A rough guess of a cell's run time, so the longest start first."""
    plan = 2400.0 if cell.plan is None else cell.plan
    return plan * (2.0 if cell.demand == "storm" else 1.0) * (1 + cell.faults)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ratesim", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a small subset of the grid")
    ap.add_argument("--demand", default="fanout,storm", help="fanout, storm or both")
    ap.add_argument("--plans", type=_floats, default=None, help="requests/min; 'unlimited'")
    ap.add_argument(
        "--latencies",
        type=lambda s: [float(x) for x in s.split(",")],
        default=None,
        help="milliseconds per call, e.g. 10,80,250",
    )
    ap.add_argument("--procs", type=lambda s: [int(x) for x in s.split(",")], default=None)
    ap.add_argument("--faults", type=lambda s: [float(x) for x in s.split(",")], default=None)
    ap.add_argument("--durations", type=lambda s: [float(x) for x in s.split(",")], default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--span", type=float, default=180.0, help="simulated s per limited cell")
    ap.add_argument("--callers", type=int, default=64, help="storm: callers per process")
    ap.add_argument("--unlimited-files", type=int, default=100)
    ap.add_argument("--unlimited-calls", type=int, default=1000)
    ap.add_argument("--storage-time", type=float, default=0.05)
    ap.add_argument("--start-spread", type=float, default=0.01, help="s between process starts")
    ap.add_argument("--burst", type=float, default=None, help="bucket capacity in calls")
    ap.add_argument("--precise-retry-after", action="store_true", help="send retry-after-ms")
    ap.add_argument("--early-share", type=float, default=None, help="process 0's share, e.g. .25")
    ap.add_argument("--known-limit", action="store_true", help="rate_limit=plan/procs each")
    ap.add_argument("--controller", choices=("adaptive", "off"), default="adaptive")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--trace", type=float, default=None, help="one cell: print state every N s")
    args = ap.parse_args(argv)
    if args.quick:
        args.plans = args.plans or [120.0, 2400.0, None]
        args.latencies = args.latencies or [80.0]
        args.procs = args.procs or [1, 4]
        args.durations = args.durations or [1.0]
    args.plans = args.plans or [20.0, 120.0, 600.0, 2400.0, None]
    args.latencies = args.latencies or [10.0, 80.0, 250.0]
    args.procs = args.procs or [1, 4, 8]
    args.faults = args.faults or [0.0, 0.2]
    args.durations = args.durations or [1.0, 60.0]

    cells = _grid(args)
    if args.trace is not None:
        if len(cells) != 1:
            ap.error(f"--trace needs exactly one cell; the options select {len(cells)}")
        _trace(cells[0], args)
        return 0
    jobs = [(c, args) for c in sorted(cells, key=_cost, reverse=True)]
    began = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            done = list(pool.map(run_cell, jobs, chunksize=1))
    else:
        done = [run_cell(j) for j in jobs]
    elapsed = time.perf_counter() - began
    by_cell = {o.cell: o for o in done}
    outcomes = [by_cell[c] for c in cells]

    print(
        f"# Rate controller on the simulated grid ({len(cells)} cells, seed {args.seed}, "
        f"controller: {args.controller})\n"
    )
    print(
        "| demand | plan/min | lat ms | procs | faults | job s | used | 429 pace after burst "
        "| 429 all | wall s | x off | fair | failed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        print(_row(o))
    print("\n## Worst cell per target\n")
    print("\n".join(_report_targets(outcomes)))
    events = sum(o.events for o in outcomes)
    print(f"\n{len(cells)} cells, {events:,} events, {elapsed:.1f} s on {args.workers} worker(s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
