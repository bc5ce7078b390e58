"""How fast and how small the Task API emulator is.

1. Throughput: create+result cycles per second at zero latency (``--time-scale 0``). The
   emulator runs as ``python -m parallel_tools.emulator`` in its own process; this process
   drives it with an ``httpx.AsyncClient`` and N concurrent workers, each doing
   ``POST /v1/tasks/runs`` then ``GET .../result`` in a loop.
2. Wake-up latency: how long after a run's end time its held ``/result`` answers.
3. Memory: what 100,000 stored runs cost, as growth of the process's resident set after
   their timers have fired (``--traced`` adds a tracemalloc count of Python allocations,
   in a separate process because tracemalloc's bookkeeping inflates the RSS).

Run: ``.venv/bin/python bench/bench_emulator.py`` (about a minute and a half).
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


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client, far cheaper per request than httpx, so the
    client's own CPU use does not hide what the server can do."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> RawConnection:
        return cls(*await asyncio.open_connection(host, port))

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nhost: bench\r\nx-api-key: bench\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def cycles(
    base_url: str, workers: int, seconds: float, client: str
) -> tuple[int, list[float]]:
    host, port = base_url.removeprefix("http://").split(":")
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    count = 0

    async def raw_worker(n: int) -> None:
        nonlocal count
        connection = await RawConnection.open(host, int(port))
        body = json.dumps({"input": f"Company {n}", "processor": "lite"}).encode()
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, created = await connection.request("POST", "/v1/tasks/runs", body)
            run_id = json.loads(created)["run_id"]
            status, _ = await connection.request("GET", f"/v1/tasks/runs/{run_id}/result")
            assert status == 200
            latencies.append(time.perf_counter() - started)
            count += 1
        connection.close()

    async def httpx_worker(http: httpx.AsyncClient, n: int) -> None:
        nonlocal count
        body = {"input": f"Company {n}", "processor": "lite"}
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            created = await http.post("/v1/tasks/runs", json=body)
            result = await http.get(f"/v1/tasks/runs/{created.json()['run_id']}/result")
            assert result.status_code == 200, result.text
            latencies.append(time.perf_counter() - started)
            count += 1

    if client == "raw":
        await asyncio.gather(*(raw_worker(n) for n in range(workers)))
    else:
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        async with httpx.AsyncClient(
            base_url=base_url, headers=HEADERS, limits=limits, verify=SSL_CONTEXT, timeout=60
        ) as http:
            await asyncio.gather(*(httpx_worker(http, n) for n in range(workers)))
    return count, latencies


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(concurrency: list[int], seconds: float) -> list[dict[str, Any]]:
    server = subprocess.Popen(
        [sys.executable, "-m", "parallel_tools.emulator", "--port", "0", "--time-scale", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        asyncio.run(cycles(base_url, 4, 1.0, "raw"))  # warm up
        rows = []
        for client in ("raw", "httpx"):
            for workers in concurrency:
                cpu_before = cpu_seconds(server.pid)
                count, latencies = asyncio.run(cycles(base_url, workers, seconds, client))
                server_cpu = (cpu_seconds(server.pid) - cpu_before) / seconds
                latencies.sort()
                rows.append(
                    {
                        "client": client,
                        "workers": workers,
                        "cycles_per_s": count / seconds,
                        "requests_per_s": 2 * count / seconds,
                        "p50_ms": 1000 * statistics.median(latencies),
                        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
                        "server_cpu": server_cpu,
                    }
                )
        return rows
    finally:
        server.terminate()
        server.wait(10)


# --- 2. wake-up latency -------------------------------------------------------------------------


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p99 = values[int(0.99 * (len(values) - 1))]
    return f"p50 {1000 * statistics.median(values):.3f} ms, p99 {1000 * p99:.3f} ms"


async def in_loop_wake(samples: int) -> tuple[list[float], list[float]]:
    """Due time -> run ended (timer accuracy) and run ended -> waiting holder resumed."""
    emulator = Emulator(time_scale=0.001)
    ended: dict[str, float] = {}
    finalize = emulator._finalize

    def timed_finalize(run: Any) -> None:
        ended.setdefault(run.run_id, time.time())
        finalize(run)

    emulator._finalize = timed_finalize  # type: ignore[method-assign]
    timer, resume = [], []
    for n in range(samples):
        request = parse_run({"input": f"q{n}", "processor": "lite"}, emulator._specs)
        (run,) = emulator.admit_runs([request], endpoint="create", body=None)
        await emulator.wait_terminal(run, 10)
        resumed = time.time()
        timer.append(ended[run.run_id] - run.end)
        resume.append(resumed - ended[run.run_id])
    return timer, resume


def wake_latency(samples: int) -> dict[str, str]:
    timer, resume = asyncio.run(in_loop_wake(samples))
    emulator = Emulator(time_scale=0.001)  # a lite run: 10-60 ms
    http = []
    with (
        emulator.serve() as server,
        httpx.Client(base_url=server.base_url, headers=HEADERS, verify=SSL_CONTEXT) as client,
    ):
        for n in range(samples):
            run_id = client.post(
                "/v1/tasks/runs", json={"input": f"q{n}", "processor": "lite"}
            ).json()["run_id"]
            client.get(f"/v1/tasks/runs/{run_id}/result")
            http.append(time.time() - emulator.runs[run_id].end)
    return {"timer": percentiles(timer), "resume": percentiles(resume), "http": percentiles(http)}


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


def memory(n: int, structured: bool, traced: bool) -> dict[str, float]:
    out: dict[str, float] = {"runs": n}
    for with_tracemalloc in (False, True) if traced else (False,):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--memory-child",
                str(n),
                str(int(structured)),
                str(int(with_tracemalloc)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out.update(json.loads(done.stdout))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput point")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--runs", type=int, default=100_000, help="runs for the memory test")
    parser.add_argument(
        "--traced",
        action="store_true",
        help="also count Python allocations with tracemalloc (about a minute)",
    )
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
    print(
        f"{'client':>7} {'workers':>8} {'cycles/s':>9} {'requests/s':>11} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'server CPU':>11}"
    )
    for row in throughput(args.concurrency, args.seconds):
        print(
            f"{row['client']:>7} {row['workers']:>8} {row['cycles_per_s']:>9.0f} "
            f"{row['requests_per_s']:>11.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['server_cpu']:>10.0%}"
        )

    print("\n2. /result wake-up (lite runs at time_scale=0.001, 200 each)")
    wake = wake_latency(200)
    print(f"   due time -> run ended (asyncio timer):     {wake['timer']}")
    print(f"   run ended -> held /result resumed:        {wake['resume']}")
    print(f"   due time -> response received over HTTP:  {wake['http']}")

    print(f"\n3. memory for {args.runs:,} stored runs (completed, timers fired)")
    for structured, label in (
        (False, "text input, no task spec"),
        (True, "JSON input + shared JSON schema + metadata"),
    ):
        m = memory(args.runs, structured, args.traced)
        line = (
            f"   {label}: RSS +{m['rss_growth_mib']:.1f} MiB "
            f"({m['rss_growth_mib'] * 2**20 / args.runs:.0f} B/run)"
        )
        if "traced_bytes" in m:
            line += (
                f"; tracemalloc {m['traced_bytes'] / 2**20:.1f} MiB "
                f"({m['traced_bytes'] / args.runs:.0f} B/run)"
            )
        print(line)


if __name__ == "__main__":
    main()
