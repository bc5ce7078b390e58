"""How fast and how small the Task API emulator is.

1. Throughput: create+result cycles per second at zero latency (``--time-scale 0``). The
   emulator runs as ``python -m parallel_tools.emulator`` in its own process; this process
   drives it with an ``httpx.AsyncClient`` and N concurrent workers, each doing
   ``POST /v1/tasks/runs`` then ``GET .../result`` in a loop.
2. Wake-up latency: how long after a run's end time its held ``/result`` answers.
3. Memory: what 100,000 stored runs cost, measured with tracemalloc (Python allocations) and
   as growth of the process's resident set, after their timers have fired.

Run: ``.venv/bin/python bench/bench_emulator.py`` (about half a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import httpx

from parallel_tools.emulator import Emulator
from parallel_tools.emulator._validation import parse_run

HEADERS = {"x-api-key": "bench"}
SSL_CONTEXT = ssl.create_default_context()


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- 1. throughput ------------------------------------------------------------------------------


async def cycles(base_url: str, workers: int, seconds: float) -> tuple[int, list[float]]:
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    count = 0

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        nonlocal count
        body = {"input": f"Company {n}", "processor": "lite"}
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            created = await client.post("/v1/tasks/runs", json=body)
            run_id = created.json()["run_id"]
            result = await client.get(f"/v1/tasks/runs/{run_id}/result")
            assert result.status_code == 200, result.text
            latencies.append(time.perf_counter() - started)
            count += 1

    async with httpx.AsyncClient(
        base_url=base_url, headers=HEADERS, limits=limits, verify=SSL_CONTEXT, timeout=60
    ) as client:
        await asyncio.gather(*(worker(client, n) for n in range(workers)))
    return count, latencies


def throughput(concurrency: list[int], seconds: float) -> list[dict[str, Any]]:
    server = subprocess.Popen(
        [sys.executable, "-m", "parallel_tools.emulator", "--port", "0", "--time-scale", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        asyncio.run(cycles(base_url, 4, 1.0))  # warm up
        rows = []
        for workers in concurrency:
            count, latencies = asyncio.run(cycles(base_url, workers, seconds))
            latencies.sort()
            rows.append(
                {
                    "workers": workers,
                    "cycles_per_s": count / seconds,
                    "requests_per_s": 2 * count / seconds,
                    "p50_ms": 1000 * statistics.median(latencies),
                    "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
                }
            )
        with httpx.Client(base_url=base_url, verify=SSL_CONTEXT) as client:
            stored = client.get("/_emulator/health").json()["runs"]
        return [{**row, "stored_runs_at_end": stored} for row in rows]
    finally:
        server.terminate()
        server.wait(10)


# --- 2. wake-up latency -------------------------------------------------------------------------


def wake_latency(samples: int) -> dict[str, float]:
    emulator = Emulator(time_scale=0.001)  # a lite run: 10-60 ms
    delays = []
    with (
        emulator.serve() as server,
        httpx.Client(base_url=server.base_url, headers=HEADERS, verify=SSL_CONTEXT) as client,
    ):
        for n in range(samples):
            run_id = client.post(
                "/v1/tasks/runs", json={"input": f"q{n}", "processor": "lite"}
            ).json()["run_id"]
            client.get(f"/v1/tasks/runs/{run_id}/result")
            delays.append(time.time() - emulator.runs[run_id].end)
    delays.sort()
    return {
        "p50_ms": 1000 * statistics.median(delays),
        "p99_ms": 1000 * delays[int(0.99 * (len(delays) - 1))],
        "max_ms": 1000 * delays[-1],
    }


# --- 3. memory ----------------------------------------------------------------------------------

STRUCTURED_SPEC = {
    "output_schema": {
        "type": "json",
        "json_schema": {
            "type": "object",
            "properties": {
                "founding_date": {"type": "string", "description": "MM-YYYY"},
                "employee_count": {"type": "string", "description": "A range"},
                "funding_sources": {"type": "string", "description": "1-4 sentences"},
            },
            "required": ["founding_date", "employee_count", "funding_sources"],
            "additionalProperties": False,
        },
    }
}


async def store_runs(emulator: Emulator, n: int, structured: bool) -> None:
    for i in range(n):
        body: dict[str, Any] = {"input": f"Company number {i}", "processor": "core"}
        if structured:
            body["input"] = {
                "company_name": f"Company number {i}",
                "company_website": f"company{i}.example.com",
            }
            body["task_spec"] = STRUCTURED_SPEC
            body["metadata"] = {"row": i}
        raw = json.dumps(body).encode()
        # The create handler's own steps, without HTTP: parse, validate, store, schedule.
        request = parse_run(json.loads(raw), emulator._specs)
        emulator.admit_runs([request], endpoint="create", body=raw)
        if i % 1000 == 0:
            await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # let the end timers fire (time_scale=0)


def memory_child(n: int, structured: bool, traced: bool) -> dict[str, float]:
    """One measurement in a fresh process: tracemalloc's own bookkeeping inflates RSS, so
    allocations and RSS growth are measured in separate runs."""
    emulator = Emulator(time_scale=0)
    asyncio.run(store_runs(emulator, 10, structured))  # warm caches and imports
    gc.collect()
    rss_before = rss_mib()
    if traced:
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
    asyncio.run(store_runs(emulator, n, structured))
    gc.collect()
    assert len(emulator.runs) == n + 10
    assert all(r.final == "completed" for r in emulator.runs.values())
    if traced:
        after = tracemalloc.take_snapshot()
        grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
        return {"traced_bytes": grown}
    return {"rss_growth_mib": rss_mib() - rss_before}


def memory(n: int, structured: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for traced in (True, False):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--memory-child",
                str(n),
                str(int(structured)),
                str(int(traced)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out.update(json.loads(done.stdout))
    return {
        "runs": n,
        "traced_mib": out["traced_bytes"] / 2**20,
        "bytes_per_run": out["traced_bytes"] / n,
        "rss_growth_mib": out["rss_growth_mib"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput point")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--runs", type=int, default=100_000, help="runs for the memory test")
    parser.add_argument("--memory-child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        n, structured, traced = args.memory_child
        print(json.dumps(memory_child(n, bool(structured), bool(traced))))
        return

    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {platform.platform()}"
    )
    print("\n1. create+result cycles per second, time_scale=0, server in its own process")
    print(f"{'workers':>8} {'cycles/s':>10} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
    for row in throughput(args.concurrency, args.seconds):
        print(
            f"{row['workers']:>8} {row['cycles_per_s']:>10.0f} {row['requests_per_s']:>11.0f} "
            f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}"
        )

    print("\n2. /result wake-up after the run's end (lite at time_scale=0.001, 200 runs)")
    wake = wake_latency(200)
    print(
        f"   p50 {wake['p50_ms']:.2f} ms, p99 {wake['p99_ms']:.2f} ms, max {wake['max_ms']:.2f} ms"
    )

    print(f"\n3. memory for {args.runs:,} stored runs (completed, timers fired)")
    for structured, label in (
        (False, "text input, no task spec"),
        (True, "JSON input + shared JSON schema + metadata"),
    ):
        m = memory(args.runs, structured)
        print(
            f"   {label}: {m['traced_mib']:.1f} MiB traced ({m['bytes_per_run']:.0f} B/run), "
            f"RSS +{m['rss_growth_mib']:.1f} MiB"
        )


if __name__ == "__main__":
    main()
