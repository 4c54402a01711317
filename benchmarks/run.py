"""Client benchmarks of sarvam_async against raw aiohttp and the official SDK.

    python -m benchmarks.run                      # every scenario, 3 reps, 5,000 calls
    python -m benchmarks.run --scenario dl1-c50   # one scenario (repeatable)
    python -m benchmarks.run --quick              # a smoke run of a few seconds

Each scenario starts its server in its own process; each client run is a fresh process and
the clients' order rotates from one repetition to the next. Figures are medians, with the
min-max range, of the timed section of each client process. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ._clients import BASELINE, CLIENTS, SDK, Job, client_main, sdk_installed
from ._server import ServerConfig, ServerProcess
from ._stream import StreamJob, stream_main

A = TypeVar("A")
Result = dict[str, Any]
NO_SDK = tuple(c for c in CLIENTS if c != SDK)
RETRYING = (
    "sarvam_async",
    "sarvam_async (adaptive_rate=False)",
    "aiohttp + json.loads",
    "aiohttp + msgspec + tenacity",
    SDK,
)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    server: ServerConfig
    op: str = "download"
    conc: int = 50
    clients: tuple[str, ...] = CLIENTS
    time_limit: float | None = None  # seconds per client run; None: --time-limit
    sdk_share: float = 1.0  # the SDK makes this share of the calls (it is slow: CPU/1k holds)


def _dl(
    files: int, conc: int, clients: tuple[str, ...] = CLIENTS, sdk_share: float = 1.0
) -> Scenario:
    return Scenario(
        f"dl{files}-c{conc}",
        f"download-files, {files:,} file(s) per answer, concurrency {conc:,}",
        ServerConfig(files=files),
        conc=conc,
        clients=clients,
        sdk_share=sdk_share,
    )


SCENARIOS = {
    s.name: s
    for s in (
        _dl(1, 50),
        _dl(1, 500),
        _dl(1, 5000, NO_SDK),
        _dl(1000, 50, sdk_share=0.2),
        _dl(1000, 500, NO_SDK),
        _dl(1000, 5000, NO_SDK),
        Scenario(
            "status1000-c50",
            "get_status, 1,000 job_details per answer, concurrency 50",
            ServerConfig(job_details=1000),
            op="status",
            sdk_share=0.1,
        ),
        Scenario(
            "emulator-dl1-c50",
            "download-files on the project's Emulator (a completed job), concurrency 50",
            ServerConfig(kind="emulator"),
        ),
        Scenario(
            "retry429-c50",
            "download-files, every 5th request answered 429 (retry-after-ms: 5), concurrency 50",
            ServerConfig(throttle_every=5),
            clients=RETRYING,
            time_limit=30.0,
        ),
    )
}
STREAM = "stream"
QUICK = ("dl1-c50", "retry429-c50", STREAM)


def fresh(fn: Callable[[A], Result], arg: A, timeout: float = 900.0) -> Result:
    """Run ``fn(arg)`` in a fresh (spawned) process and return its result."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        try:
            return pool.submit(fn, arg).result(timeout)
        except Exception as exc:  # a crashed or hung client: an error, not a crash here
            return {"errors": -1, "first_error": f"{type(exc).__name__}: {exc}"}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_scenario(
    sc: Scenario, clients: Sequence[str], reps: int, calls: int, time_limit: float
) -> dict[str, list[Result]]:
    server = ServerProcess(sc.server)
    results: dict[str, list[Result]] = {c: [] for c in clients}
    try:
        for rep in range(reps):
            order = list(clients[rep % len(clients) :]) + list(clients[: rep % len(clients)])
            for client in order:
                n = max(1, int(calls * sc.sdk_share)) if client == SDK else calls
                warmup = min(500, n // 10)
                job = Job(
                    client,
                    server.url,
                    sc.op,
                    server.job_id,
                    server.output,
                    sc.conc,
                    n,
                    warmup,
                    time_limit,
                )
                before = server.snapshot()
                started = time.perf_counter()
                res = fresh(client_main, job)
                res["process_s"] = time.perf_counter() - started
                after = server.snapshot()
                sent = res.get("done", n) + warmup
                res["retries"] = int(after["requests"] - before["requests"]) - sent
                res["throttled"] = int(after["throttled"] - before["throttled"])
                if res.get("done"):
                    res["per_1k"] = res["cpu"] / res["done"] * 1000
                    res["rate"] = res["done"] / res["wall"]
                    share = calls / sent  # server CPU of the timed section, roughly
                    res["server_busy"] = (after["cpu"] - before["cpu"]) * share / res["wall"]
                results[client].append(res)
                _log(f"  {sc.name} rep {rep + 1} {client}: {_brief(res)}")
    finally:
        server.stop()
    return results


def _brief(res: Result) -> str:
    if "per_1k" not in res:
        return f"FAILED {res.get('first_error')}"
    took = f" [{res['process_s']:.1f} s]" if "process_s" in res else ""
    extra = f" errors={res['errors']} ({res['first_error']})" if res["errors"] else ""
    return f"{res['per_1k']:.3f} CPU s/1k, {res['rate']:,.0f} calls/s{took}{extra}"


def _stat(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def _vals(runs: list[Result], key: str) -> list[float]:
    return [r[key] for r in runs if key in r]


def _median(runs: list[Result], key: str) -> float | None:
    vals = _vals(runs, key)
    return statistics.median(vals) if vals else None


def table(sc: Scenario, results: dict[str, list[Result]]) -> str:
    base = _median(results.get(BASELINE, []), "per_1k")
    lines = [
        f"### {sc.name}: {sc.title}",
        "",
        "| client | CPU s / 1k calls | x aiohttp+json | calls/s | peak RSS MB | errors | "
        "retries | server busy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for client, runs in results.items():
        med = _median(runs, "per_1k")
        ratio = f"{med / base:.2f}" if med is not None and base else "n/a"
        errors = sum(abs(r["errors"]) for r in runs)
        unfinished = sum(r.get("unfinished", 0) for r in runs)
        errors_text = f"{errors} ({unfinished} unfinished)" if unfinished else str(errors)
        retries = statistics.median([r["retries"] for r in runs]) if runs else 0
        lines.append(
            f"| {client} | {_stat(_vals(runs, 'per_1k'), '.3f')} | {ratio} | "
            f"{_stat(_vals(runs, 'rate'), ',.0f')} | {_stat(_vals(runs, 'rss_mb'), '.0f')} | "
            f"{errors_text} | {retries:,.0f} | {_stat(_vals(runs, 'server_busy'), '.0%')} |"
        )
    if SDK in results and sc.sdk_share != 1.0:
        lines.append(f"\n{SDK} made {sc.sdk_share:.0%} of the calls here (it is slow).")
    return "\n".join(lines)


def run_stream(reps: int, size: int) -> tuple[str, dict[str, list[Result]]]:
    server = ServerProcess(ServerConfig())
    results: dict[str, list[Result]] = {}
    kinds = [(c, d) for d in ("upload", "download") for c in ("sarvam_async", "aiohttp")]
    try:
        for rep in range(reps):
            for client, direction in kinds[rep % 2 :] + kinds[: rep % 2]:
                res = fresh(stream_main, StreamJob(client, direction, server.url, size))
                results.setdefault(f"{client} {direction}", []).append(res)
                _log(f"  stream rep {rep + 1} {client} {direction}: {res}")
    finally:
        server.stop()
    lines = [
        f"### stream: one {size / 2**20:,.0f} MiB file through presigned-style URLs",
        "",
        "| client | MB/s | CPU s | peak RSS MB | RSS above baseline MB | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name in sorted(results):
        runs = results[name]
        lines.append(
            f"| {name} | {_stat(_vals(runs, 'mb_s'), ',.0f')} | {_stat(_vals(runs, 'cpu'), '.2f')} "
            f"| {_stat(_vals(runs, 'rss_mb'), '.0f')} | "
            f"{_stat(_vals(runs, 'rss_above_mb'), '.1f')} | "
            f"{sum(abs(r.get('errors', 1)) for r in runs)} |"
        )
    return "\n".join(lines), results


def targets(all_results: dict[str, dict[str, list[Result]]]) -> list[str]:
    """The project's targets, checked against whatever scenarios ran."""
    out: list[str] = []

    def cpu(sc: str, client: str) -> float | None:
        return _median(all_results.get(sc, {}).get(client, []), "per_1k")

    def check(label: str, ok: bool, detail: str) -> None:
        out.append(f"- {'PASS' if ok else 'MISS'}: {label} ({detail})")

    me = "sarvam_async"
    for sc, sdk_x in (("dl1-c50", 15.0), ("dl1-c500", 50.0)):
        mine, base, sdk = cpu(sc, me), cpu(sc, BASELINE), cpu(sc, SDK)
        if mine and base:
            check(f"{sc}: ≤ 1.25x raw aiohttp+json", mine <= 1.25 * base, f"{mine / base:.2f}x")
        if mine and sdk:
            check(
                f"{sc}: ≥ {sdk_x:.0f}x less CPU than the SDK",
                sdk >= sdk_x * mine,
                f"{sdk / mine:.1f}x",
            )
    for sc in ("dl1000-c50", "status1000-c50"):
        mine, base, sdk = cpu(sc, me), cpu(sc, BASELINE), cpu(sc, SDK)
        if mine and sdk:
            check(f"{sc}: ≥ 30x less CPU than the SDK", sdk >= 30 * mine, f"{sdk / mine:.1f}x")
        if mine and base:
            check(f"{sc}: below raw aiohttp+json", mine < base, f"{mine / base:.2f}x")
    for sc in ("dl1-c5000", "dl1000-c5000"):
        runs = all_results.get(sc, {}).get(me, [])
        if runs:
            errors = sum(abs(r["errors"]) for r in runs)
            rss = max(_vals(runs, "rss_mb") or [0.0])
            check(
                f"{sc}: no errors, peak RSS < 150 MB",
                errors == 0 and rss < 150,
                f"{errors} errors, max {rss:.0f} MB",
            )
    # The retry path's cost is measured with pacing off: against a fixed share of 429s the
    # adaptive limiter slows right down by design (a real limit looks the same from here).
    runs = all_results.get("retry429-c50", {}).get("sarvam_async (adaptive_rate=False)", [])
    if runs:
        errors = sum(abs(r["errors"]) for r in runs)
        check("retry429-c50 (pacing off): every call completes", errors == 0, f"{errors} errors")
    for direction in ("upload", "download"):
        runs = all_results.get(STREAM, {}).get(f"sarvam_async {direction}", [])
        if runs:
            above = max(_vals(runs, "rss_above_mb") or [1e9])
            check(
                f"stream {direction}: peak RSS < 64 MB above baseline",
                above < 64,
                f"max {above:.1f} MB",
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    names = [*SCENARIOS, STREAM]
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--scenario",
        action="append",
        choices=names,
        metavar="NAME",
        help=f"run only these (repeatable): {', '.join(names)}",
    )
    ap.add_argument(
        "--client",
        action="append",
        choices=CLIENTS,
        metavar="NAME",
        help="run only these clients (repeatable; the aiohttp+json baseline is always kept)",
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per client (default 3)")
    ap.add_argument("--calls", type=int, default=5000, help="timed calls per run (default 5000)")
    ap.add_argument(
        "--time-limit", type=float, default=300.0, help="seconds per client run (default 300)"
    )
    ap.add_argument("--stream-mib", type=int, default=512, help="streamed file size (512)")
    ap.add_argument("--out", help="also write the Markdown tables to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.calls, args.stream_mib, args.time_limit = 1, 300, 32, 3.0
    scenarios = args.scenario or (list(QUICK) if args.quick else names)
    have_sdk = sdk_installed()
    notes = [] if have_sdk else [f"{SDK} is not installed (pip install -e '.[bench]'): skipped."]
    blocks: list[str] = []
    all_results: dict[str, dict[str, list[Result]]] = {}
    for name in scenarios:
        _log(f"{name} ...")
        if name == STREAM:
            block, all_results[name] = run_stream(args.reps, args.stream_mib * 2**20)
            blocks.append(block)
            continue
        sc = SCENARIOS[name]
        clients = [
            c
            for c in sc.clients
            if (c != SDK or have_sdk) and (not args.client or c in args.client or c == BASELINE)
        ]
        if args.quick and name != "dl1-c50":
            clients = [c for c in clients if c != SDK]  # its 1 s retry sleeps: too slow here
        limit = min(args.time_limit, sc.time_limit or args.time_limit)
        all_results[name] = run_scenario(sc, clients, args.reps, args.calls, limit)
        blocks.append(table(sc, all_results[name]))
    header = f"{args.calls:,} timed calls per run, {args.reps} rep(s) per client, medians (min-max)"
    text = "\n\n".join([header, *blocks, "### Targets", "\n".join(targets(all_results)), *notes])
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
