"""Rate control on real processes: its workloads, pacing on beside pacing off.

    python -m benchmarks.ratecontrol              # every row (about 10 minutes)
    python -m benchmarks.ratecontrol --row clean  # one row (repeatable)

Each row runs ``benchmarks.fanout``'s workload (the emulator in its own process, each
client in a fresh process, ``transcribe_files``) twice with the same seed: with the default
client, then with ``adaptive_rate=False``. The emulator answers every 429 and rate-limit 503
with ``Retry-After`` in whole seconds, as the live API does. Wall times are the busy period
(first call to last outcome), medians of ``--reps`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import statistics
import sys
from collections.abc import Sequence

from . import fanout

# the first workload: 100 files, no account limit, jobs that end at once
_SMALL = "--files 100 --rate-limit 0 --job-duration 0.05 --poll-interval 0.05"

# name: (fanout options, what it models)
ROWS: dict[str, tuple[str, str]] = {
    "clean": (f"{_SMALL} --latency 0.03", "100 files, 30 ms per call, no limit, no faults"),
    "clean-10ms": (f"{_SMALL} --latency 0.01", "the same at 10 ms"),
    "clean-250ms": (f"{_SMALL} --latency 0.25", "the same at 250 ms"),
    "faults": (
        f"{_SMALL} --latency 0.03 --fault-rate 0.2",
        "the same with a fifth of answers refused at random (429 or 503)",
    ),
    "limit": (
        "--files 1000 --rate-limit 600 --latency 0.05 --job-duration 2",
        "1,000 files under 600/min, 50 ms per call, 2 s jobs",
    ),
    "limit-faults": (
        "--files 300 --rate-limit 600 --latency 0.05 --job-duration 1 --fault-rate 0.2",
        "300 files under 600/min with a fifth of answers refused at random",
    ),
}
MULTI: dict[str, tuple[str, str]] = {
    "multi-600": (
        "--files 1000 --rate-limit 600 --multi-latency 0.08 --job-duration 2",
        "4 processes x 250 files sharing 600/min",
    ),
    "multi-2400": (
        "--files 1600 --rate-limit 2400 --multi-latency 0.03 --job-duration 1 --burst 5",
        "4 processes x 400 files sharing 40/s, bursts of 5",
    ),
}

_ALL = re.compile(r"^\| all \(\d+ process(?:es)?\) \|(.*)$", re.M)


def _run(options: str, part: str, pacing: str) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fanout.main([*options.split(), "--part", part, "--pacing", pacing])
    match = _ALL.search(out.getvalue())
    assert match, out.getvalue()
    return [c.strip() for c in match.group(1).split("|")]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ratecontrol", description=__doc__)
    ap.add_argument("--row", action="append", choices=[*ROWS, *MULTI])
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args(argv)
    names = args.row or [*ROWS, *MULTI]
    print("| row | pacing | wall s | files ok | API calls | 429 share | limit used |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        options, what = ROWS.get(name) or MULTI[name]
        part = "single" if name in ROWS else "multi"
        walls: dict[str, float] = {}
        for pacing in ("on", "off"):
            runs = [_run(options, part, pacing) for _ in range(args.reps)]
            cells = runs[len(runs) // 2]
            walls[pacing] = statistics.median(float(r[1]) for r in runs)
            print(
                f"| {name}: {what} | {pacing} | {walls[pacing]:.2f} | {cells[0]} | {cells[4]} |"
                f" {cells[5]} | {cells[6]} |"
            )
        print(f"| {name} | on / off | {walls['on'] / walls['off']:.2f}x | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
