"""Enrichment end to end against the emulator, including SIGKILL at the dangerous moments and a
resume that must not pay twice or lose a row."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from parallel_tools import InvalidInputError, RetryPolicy, Task, TaskClient
from parallel_tools.emulator import EmulatorServer, Fault
from parallel_tools.enrich import Enrichment, JournalMismatchError, enrich

COLUMNS = ["--output", "founded: the founding year", "--output", "hq: the headquarters city"]


def write_csv(path: Path, rows: int, bad: tuple[int, ...] = ()) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["company_name", "company_website"])
        for i in range(rows):
            writer.writerow(["", ""] if i in bad else [f"Company {i}", f"c{i}.example"])
    return path


def client_for(server: EmulatorServer) -> TaskClient:
    return TaskClient(api_key=server.api_key, base_url=server.base_url)


def runs_per_row(server: EmulatorServer) -> Counter[str]:
    counts: Counter[str] = Counter()
    for run_id in server.emulator.runs:
        metadata = server.emulator.get_run(run_id).metadata or {}
        counts[str(metadata.get("pt_row"))] += 1
    return counts


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_csv_is_enriched_in_order_with_citation_and_confidence_columns(
    tmp_path: Path, parallel_emulator: EmulatorServer
) -> None:
    source = write_csv(tmp_path / "in.csv", 40, bad=(5,))
    out = tmp_path / "out.csv"
    with client_for(parallel_emulator) as client:
        summary = enrich(
            client,
            source,
            out,
            output={
                "type": "object",
                "properties": {"founded": {"type": "string"}, "hq": {"type": "string"}},
            },
            concurrency=4,
        )
    assert (summary.total, summary.completed, summary.invalid, summary.failed) == (40, 39, 1, 0)
    rows = read_csv(out)
    assert [r["company_name"] for r in rows] == [
        "" if i == 5 else f"Company {i}" for i in range(40)
    ]
    first = rows[0]
    assert first["_status"] == "completed" and first["_run_id"].startswith("trun_")
    assert first["founded"] and first["founded_confidence"] in ("low", "medium", "high")
    assert first["hq_citations"].startswith("https://")
    assert rows[5]["_status"] == "invalid" and rows[5]["_error"] == "the row is empty"
    errors = [json.loads(line) for line in summary.errors_path.read_text().splitlines()]  # type: ignore[union-attr]
    assert errors == [{"row": 6, "line": 7, "status": "invalid", "error": "the row is empty"}]
    counts = parallel_emulator.emulator.request_counts
    assert counts["group_create"] == 1 and counts["group_add_runs"] == 1
    assert counts["create"] == 0 and counts["result"] <= 39
    assert set(runs_per_row(parallel_emulator).values()) == {1}


class CompanyIn(BaseModel):
    company_name: str
    company_website: str


class CompanyOut(BaseModel):
    founding_date: str
    employee_count: str
    funding_sources: str


def test_jsonl_in_and_out_keeps_the_full_basis_and_reports_bad_lines(
    tmp_path: Path, parallel_emulator: EmulatorServer
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"company_name": "United Nations", "company_website": "www.un.org"}\n'
        "{not json\n"
        "\n"
        '{"company_name": "No website"}\n'
        f'{{"company_name": "{"x" * 30000}", "company_website": "big.example"}}\n'
        '{"company_name": "Parallel", "company_website": "parallel.ai"}\n'
    )
    task = Task("profile", "Profile a company.", input=CompanyIn, output=CompanyOut)
    out = tmp_path / "out.jsonl"
    with client_for(parallel_emulator) as client:
        summary = enrich(client, source, out, task=task)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["row"] for line in lines] == [1, 2, 3, 4, 5]
    assert [line["status"] for line in lines] == [
        "completed",
        "invalid",
        "invalid",
        "invalid",
        "completed",
    ]
    assert lines[0]["output"]["founding_date"] == "10-1945"  # the built-in UN fixture
    assert lines[0]["basis"][0]["citations"]
    assert "malformed JSON" in lines[1]["error"]
    assert "company_website" in lines[2]["error"]
    assert "too large" in lines[3]["error"] or "25,000" in lines[3]["error"]
    errors = [json.loads(line) for line in summary.errors_path.read_text().splitlines()]  # type: ignore[union-attr]
    assert [(e["row"], e["line"]) for e in errors] == [(2, 2), (3, 4), (4, 5)]


def test_failed_runs_are_kept_in_order_and_listed(
    tmp_path: Path, parallel_emulator: EmulatorServer
) -> None:
    parallel_emulator.emulator.add_fault(
        Fault.parse("group_add_runs:fail_run=Upstream timeout:times=2")
    )
    source = write_csv(tmp_path / "in.csv", 5)
    out = tmp_path / "out.csv"
    with client_for(parallel_emulator) as client:
        summary = enrich(client, source, out, output="A one-line profile")
    assert summary.failed == 2 and summary.completed == 3
    rows = read_csv(out)
    assert Counter(r["_status"] for r in rows) == {"completed": 3, "failed": 2}
    failed = [r for r in rows if r["_status"] == "failed"]
    assert all("Upstream timeout" in r["_error"] for r in failed)
    assert rows[0]["output"] or rows[0]["_status"] == "failed"


def test_an_ambiguous_add_runs_failure_is_reconciled_not_resent(
    tmp_path: Path, parallel_emulator: EmulatorServer
) -> None:
    # The server stores the batch, then the connection drops: the client cannot know.
    parallel_emulator.emulator.add_fault(Fault.parse("group_add_runs:drop_before:after_accept"))
    source = write_csv(tmp_path / "in.csv", 30)
    with client_for(parallel_emulator) as client:
        summary = enrich(client, source, tmp_path / "out.csv", output="A profile")
    assert summary.completed == 30
    assert parallel_emulator.emulator.request_counts["group_add_runs"] == 1
    assert parallel_emulator.emulator.request_counts["group_runs"] >= 1
    assert sorted(runs_per_row(parallel_emulator).values()) == [1] * 30


def test_dry_run_counts_runs_and_price_without_sending(
    tmp_path: Path, parallel_emulator: EmulatorServer
) -> None:
    source = write_csv(tmp_path / "in.csv", 12, bad=(0, 1))
    plan = Enrichment(source, tmp_path / "out.csv", output="x", processor="core").estimate()
    assert (plan.total, plan.runs, plan.invalid) == (12, 10, 2)
    assert plan.list_price == pytest.approx(10 * 0.025)
    assert sum(parallel_emulator.emulator.request_counts.values()) == 0


def test_a_journal_from_another_job_is_refused(
    tmp_path: Path, parallel_emulator: EmulatorServer
) -> None:
    source = write_csv(tmp_path / "in.csv", 3)
    out = tmp_path / "out.csv"
    with client_for(parallel_emulator) as client:
        enrich(client, source, out, output="A profile")
        write_csv(source, 4)
        with pytest.raises(JournalMismatchError, match="different job"):
            enrich(client, source, out, output="A profile")


def test_a_finished_job_run_again_sends_nothing(
    tmp_path: Path, parallel_emulator: EmulatorServer
) -> None:
    source = write_csv(tmp_path / "in.csv", 3)
    out = tmp_path / "out.csv"
    with client_for(parallel_emulator) as client:
        enrich(client, source, out, output="A profile")
        before = sum(parallel_emulator.emulator.request_counts.values())
        out.unlink()
        summary = enrich(client, source, out, output="A profile")
    assert summary.resumed and summary.completed == 3
    assert sum(parallel_emulator.emulator.request_counts.values()) == before
    assert len(read_csv(out)) == 3


# --- SIGKILL and resume ---------------------------------------------------------------------------


def run_cli(args: list[str], env: dict[str, str], crash: str | None = None) -> int:
    full_env = {**os.environ, **env}
    full_env.pop("PARALLEL_TOOLS_CRASH_AT", None)
    if crash:
        full_env["PARALLEL_TOOLS_CRASH_AT"] = crash
    done = subprocess.run(
        [sys.executable, "-m", "parallel_tools", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(done.stderr)
    return done.returncode


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash",
    [
        "group_created",
        "batch_accepted",  # the run exists on the server, the journal does not know yet
        "batch_accepted:2",
        "result_recorded:700",
        "writing_output:2",
    ],
)
def test_sigkill_anywhere_then_resume_pays_once_and_loses_nothing(
    tmp_path: Path, parallel_emulator: EmulatorServer, crash: str
) -> None:
    rows = 2500  # three batches of at most 1,000
    source = write_csv(tmp_path / "in.csv", rows, bad=(17,))
    out = tmp_path / "out.csv"
    args = ["enrich", str(source), "-o", str(out), *COLUMNS, "--processor", "lite"]
    env = parallel_emulator.env
    assert run_cli(args, env, crash) == -signal.SIGKILL
    assert not out.exists()
    results_before = parallel_emulator.emulator.request_counts["result"]
    assert run_cli(args, env) == 0
    per_row = runs_per_row(parallel_emulator)
    assert len(per_row) == rows - 1, "every valid row was submitted"
    assert set(per_row.values()) == {1}, "no row was submitted twice"
    results_after = parallel_emulator.emulator.request_counts["result"]
    # Each result was fetched once, except at most the few in flight when the kill landed.
    assert results_after <= rows - 1 + 16
    if crash.startswith("writing_output"):
        assert results_after == results_before
    table = read_csv(out)
    assert [r["company_name"] for r in table] == [
        "" if i == 17 else f"Company {i}" for i in range(rows)
    ]
    assert Counter(r["_status"] for r in table) == {"completed": rows - 1, "invalid": 1}


def assert_ok(value: Any) -> None:
    assert value


# --- Review fixes: fetch failures, in-flight batches, refused rows, bad files ---------------------


@pytest.mark.parallel_emulator(time_scale=0.003)
def test_a_result_that_could_not_be_fetched_is_fetched_again_not_recorded_empty(
    tmp_path: Path, parallel_emulator: EmulatorServer
) -> None:
    emu = parallel_emulator.emulator
    emu.add_fault(Fault.parse("result:500:times=0"))
    source = write_csv(tmp_path / "in.csv", 8)
    policy = RetryPolicy(max_retries=0, outage_patience=0)
    with TaskClient(
        api_key=parallel_emulator.api_key, base_url=parallel_emulator.base_url, retry=policy
    ) as client:
        summary = enrich(client, source, tmp_path / "out.csv", output="A profile")
    rows = read_csv(tmp_path / "out.csv")
    assert summary.completed == 8
    assert all(r["_status"] == "completed" and r["output"] for r in rows)


def test_a_batch_still_in_flight_is_waited_for_not_sent_twice(
    tmp_path: Path, parallel_emulator: EmulatorServer
) -> None:
    emu = parallel_emulator.emulator
    # The server is slower than the client's patience: the client gives up (ambiguous), the
    # server then creates the runs anyway.
    emu.add_fault(Fault.parse("group_add_runs:delay=1.5"))
    source = write_csv(tmp_path / "in.csv", 5)
    with TaskClient(
        api_key=parallel_emulator.api_key,
        base_url=parallel_emulator.base_url,
        timeout=0.5,
        retry=RetryPolicy(max_retries=0),
    ) as client:
        job = Enrichment(source, tmp_path / "out.csv", output="A profile", settle_margin=2.0)
        summary = job.run(client)
    assert summary.completed == 5
    assert sorted(runs_per_row(parallel_emulator).values()) == [1] * 5


def test_rows_the_api_refuses_are_isolated_and_the_rest_still_run(
    tmp_path: Path, parallel_emulator: EmulatorServer
) -> None:
    emu = parallel_emulator.emulator
    emu.add_fault(Fault.parse("group_add_runs:422:times=0:match=Weird"))
    source = tmp_path / "in.csv"
    source.write_text("company_name\n" + "".join(f"Co {i}\n" for i in range(9)) + "Weird Co\n")
    with client_for(parallel_emulator) as client:
        summary = enrich(client, source, tmp_path / "out.csv", output="A profile")
    assert (summary.completed, summary.invalid) == (9, 1)
    rows = read_csv(tmp_path / "out.csv")
    assert rows[-1]["_status"] == "rejected" and "refused" in rows[-1]["_error"]
    assert sorted(runs_per_row(parallel_emulator).values()) == [1] * 9


def test_the_input_can_never_be_overwritten_by_a_derived_file(tmp_path: Path) -> None:
    source = tmp_path / "res.errors.jsonl"
    source.write_text('{"a": 1}\n')
    with pytest.raises(InvalidInputError, match="would be overwritten"):
        Enrichment(source, tmp_path / "res.jsonl", output="x")


def test_one_job_at_a_time_per_output(tmp_path: Path, parallel_emulator: EmulatorServer) -> None:
    source = write_csv(tmp_path / "in.csv", 2)
    first = Enrichment(source, tmp_path / "out.csv", output="x")
    second = Enrichment(source, tmp_path / "out.csv", output="x")
    with (
        first._journal.locked(),
        client_for(parallel_emulator) as client,
        pytest.raises(InvalidInputError, match="already enriching"),
    ):
        second.run(client)
    assert parallel_emulator.emulator.request_counts["group_create"] == 0


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"name,name\nA,B\n", "repeats column"),
        (b"hq\nA\n", "names of output columns"),
        (b"name\n\xff\xfe\n", "not UTF-8"),
    ],
)
def test_files_that_cannot_be_read_faithfully_are_refused(
    tmp_path: Path, content: bytes, match: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    spec = {"type": "object", "properties": {"hq": {"type": "string"}}}
    with pytest.raises(InvalidInputError, match=match):
        Enrichment(source, tmp_path / "out.csv", output=spec).estimate()


def test_huge_cells_and_a_bom_are_handled_per_row(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("name\n" + "x" * 200_000 + "\nsmall\n")
    plan = Enrichment(source, tmp_path / "out.csv", output="x").estimate()
    assert (plan.total, plan.invalid) == (2, 1)
    lines = tmp_path / "in.jsonl"
    lines.write_bytes(b'\xef\xbb\xbf{"name": "A"}\n')
    assert Enrichment(lines, tmp_path / "o.jsonl", output="x").estimate().invalid == 0
