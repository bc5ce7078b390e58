"""Client cost per run and completion-to-delivery latency: parallel-tools vs the official SDK.

Both clients talk to the same emulator, which runs in its own process.

* CPU per create+wait: client-process CPU time (user+system) for N sequential cycles of "create
  a run, wait for its result" at zero latency, so the figure is the client's own overhead.
* Delivery latency: runs that take about 10-60 ms (`lite` at time scale 0.001); the time from
  the run's completion (its `modified_at`) to the moment the client hands the result back.

    python bench/bench_client.py [--runs 300]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _server import emulator_process
from parallel import Parallel

from parallel_tools import TaskClient

KEY = "bench-key"


def cpu_per_cycle(cycle: Callable[[], object], runs: int) -> float:
    for _ in range(10):  # warm up connections and caches
        cycle()
    start = time.process_time()
    for _ in range(runs):
        cycle()
    return (time.process_time() - start) / runs * 1000


def completed_at(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def latency(cycle: Callable[[], str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        finished = cycle()
        out.append((time.time() - completed_at(finished)) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    n = args.runs

    with emulator_process(0) as url:
        ours = TaskClient(api_key=KEY, base_url=url)
        sdk = Parallel(api_key=KEY, base_url=url)

        def ours_cycle() -> object:
            run = ours.create_run(
                "What is the tallest building?", output="A name", processor="lite"
            )
            return ours.wait(run.run_id)

        def sdk_cycle() -> object:
            run = sdk.task_run.create(
                input="What is the tallest building?",
                processor="lite",
                task_spec={"output_schema": "A name"},
            )
            return sdk.task_run.result(run.run_id, api_timeout=600)

        def sdk_execute() -> object:
            return sdk.task_run.execute(
                input="What is the tallest building?", processor="lite", output="A name"
            )

        rows = [
            ("parallel-tools create+wait", cpu_per_cycle(ours_cycle, n)),
            ("parallel-web create+result", cpu_per_cycle(sdk_cycle, n)),
            ("parallel-web execute", cpu_per_cycle(sdk_execute, n)),
        ]
    base = rows[0][1]
    print(f"Client CPU per create+wait cycle, {n} sequential cycles, zero-latency emulator")
    for name, ms in rows:
        print(f"  {name:<30} {ms:7.3f} ms   ({ms / base:4.2f}x parallel-tools)")

    with emulator_process(0.001) as url:
        ours = TaskClient(api_key=KEY, base_url=url)
        sdk = Parallel(api_key=KEY, base_url=url)

        def ours_latency() -> str:
            run = ours.create_run("How tall is it?", output="A height", processor="lite")
            done = ours.wait(run.run_id).run.modified_at
            assert done
            return done

        def sdk_latency() -> str:
            run = sdk.task_run.create(
                input="How tall is it?", processor="lite", task_spec={"output_schema": "A height"}
            )
            done = sdk.task_run.result(run.run_id, api_timeout=600).run.modified_at
            assert done
            return done

        def sdk_polling() -> str:
            # Parallel's own CLI polls the run every 30 s; scaled here to 30 ms.
            run = sdk.task_run.create(
                input="How tall is it?", processor="lite", task_spec={"output_schema": "A height"}
            )
            while sdk.task_run.retrieve(run.run_id).is_active:
                time.sleep(0.03)
            done = sdk.task_run.result(run.run_id).run.modified_at
            assert done
            return done

        m = max(50, n // 3)
        print(f"\nCompletion-to-delivery latency, {m} runs of 10-60 ms each")
        for name, cycle in [
            ("parallel-tools wait", ours_latency),
            ("parallel-web result (one hold)", sdk_latency),
            ("polling every 30 ms (scaled 30 s)", sdk_polling),
        ]:
            values = sorted(latency(cycle, m))
            p50 = statistics.median(values)
            p95 = values[int(len(values) * 0.95) - 1]
            print(f"  {name:<34} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   max {values[-1]:6.2f} ms")


if __name__ == "__main__":
    main()
