"""Enrichment throughput and peak memory at 10,000 and 100,000 rows.

`parallel-tools enrich` runs in a child process against a zero-latency emulator in another, so
the figures are the enricher's own: rows per second end to end (submit, collect, write the
output in order) and the enricher's peak RSS. Memory should not grow with the row count beyond
the journal on disk.

    python bench/bench_enrich.py [--rows 10000 100000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _server import emulator_process

CHILD = """
import resource, sys
from parallel_tools.cli import main
code = main(sys.argv[1:])
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def write_input(path: Path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["company_name", "company_website"])
        for i in range(rows):
            writer.writerow([f"Company {i}", f"company{i}.example"])


def enrich(url: str, rows: int, work: Path) -> tuple[float, float, int]:
    source = work / f"in_{rows}.csv"
    out = work / f"out_{rows}.csv"
    write_input(source, rows)
    env = {**os.environ, "PARALLEL_API_KEY": "bench", "PARALLEL_BASE_URL": url}
    command = [sys.executable, "-c", CHILD, "enrich", str(source), "-o", str(out)]
    command += ["--output", "founded: the founding year", "--output", "ceo: the CEO"]
    command += ["--processor", "lite", "--concurrency", "16"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    rss_kb = int(done.stderr.split("MAXRSS_KB")[1].split()[0])
    journal = out.with_name(out.name + ".journal").stat().st_size
    with out.open() as handle:
        assert sum(1 for _ in handle) == rows + 1
    return elapsed, rss_kb / 1024, journal


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp, emulator_process(0) as url:
        for rows in args.rows:
            elapsed, rss_mb, journal = enrich(url, rows, Path(tmp))
            results.append((rows, elapsed, rss_mb, journal))
            print(
                f"{rows:>8,} rows: {elapsed:7.1f} s, {rows / elapsed:8.0f} rows/s, "
                f"peak RSS {rss_mb:6.1f} MB, journal {journal / 1e6:6.1f} MB"
            )
    if len(results) > 1:
        (r0, _, m0, _), (r1, _, m1, _) = results[0], results[-1]
        print(
            f"\n{r1 // r0}x the rows: {m1 / m0:.2f}x the peak memory "
            f"({(m1 - m0) * 1024 * 1024 / (r1 - r0):.0f} bytes per extra row)"
        )
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
