"""The `parallel-tools` commands end to end against the emulator, with their exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parallel_tools.cli import main
from parallel_tools.emulator import EmulatorServer, Fault

SEED_OUTPUT = "The founding date of the company in the format MM-YYYY"


@pytest.fixture
def env(parallel_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    for name, value in parallel_emulator.env.items():
        monkeypatch.setenv(name, value)
    return parallel_emulator


def test_the_readme_main_job_prints_the_seed_answer_with_citations() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARALLEL_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "parallel_tools",
            "run",
            "--emulator",
            "United Nations",
            "--output",
            SEED_OUTPUT,
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "10-1945 [1][2][3][4]"
    assert "[1] https://www.un.org/en/about-us/history-of-the-un" in done.stdout
    assert "built-in emulator" in done.stderr


def test_without_a_key_or_emulator_both_ways_out_are_explained(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PARALLEL_API_KEY", raising=False)
    assert main(["run", "United Nations", "--output", "x"]) == 3
    err = capsys.readouterr().err
    assert "PARALLEL_API_KEY" in err and "--emulator" in err


def test_run_json_no_wait_result_and_status(
    env: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "United Nations", "--output", SEED_OUTPUT, "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["output"]["content"] == "10-1945" and full["run"]["status"] == "completed"

    assert main(["run", "United Nations", "--output", SEED_OUTPUT, "--no-wait"]) == 0
    run_id = capsys.readouterr().out.strip()
    assert run_id.startswith("trun_")
    assert main(["result", run_id, "--wait"]) == 0
    assert capsys.readouterr().out.startswith("10-1945 [1]")
    assert main(["status", run_id]) == 0
    assert f"{run_id}: completed (processor base)" in capsys.readouterr().out
    assert main(["status", run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == run_id


@pytest.mark.parallel_emulator(time_scale=1.0, max_result_hold=1)
def test_timeouts_exit_5_and_keep_the_run(
    env: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "slow question", "--output", "x", "--timeout", "0.5"]) == 5
    err = capsys.readouterr().err
    assert "still running" in err and "trun_" in err
    run_id = next(iter(env.emulator.runs))
    assert f"parallel-tools result {run_id} --wait" in err
    assert main(["result", run_id]) == 5
    assert "add --wait" in capsys.readouterr().err


def test_bad_input_exits_2(env: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "{not json", "--input-json"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["run", "x", "--model", "nowhere:Model"]) == 2
    assert main(["run", "x", "--schema", "/does/not/exist.json"]) == 2
    assert sum(env.emulator.request_counts.values()) == 0


def test_api_errors_exit_4_and_auth_errors_exit_3(
    env: EmulatorServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env.emulator.add_fault(Fault.parse("create:402"))
    assert main(["run", "x", "--output", "y"]) == 4
    assert "credit" in capsys.readouterr().err
    env.emulator.configure(api_keys=["the-right-key"])
    monkeypatch.setenv("PARALLEL_API_KEY", "a-wrong-key")
    assert main(["status", "trun_x"]) == 3
    err = capsys.readouterr().err
    assert "401" in err and "a-wrong-key" not in err


def test_a_model_from_a_module_types_the_output(
    env: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "my_models.py").write_text(
        "from pydantic import BaseModel, Field\n"
        "class Founding(BaseModel):\n"
        "    founding_date: str = Field(description='MM-YYYY')\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["run", "United Nations", "--model", "my_models:Founding"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("- founding_date: ")


def test_enrich_dry_run_needs_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PARALLEL_API_KEY", raising=False)
    source = tmp_path / "in.csv"
    source.write_text("name\nA\nB\n\nC\n")
    code = main(
        [
            "enrich",
            str(source),
            "-o",
            str(tmp_path / "o.csv"),
            "--output",
            "ceo: the CEO",
            "--processor",
            "pro",
            "--dry-run",
        ]
    )
    assert code == 0
    assert (
        "3 run(s) on pro for 3 row(s) (0 invalid): $0.30 at list price" in capsys.readouterr().out
    )
    assert main(["enrich", str(source), "-o", str(tmp_path / "o.csv"), "--output", "no colon"]) == 2


def test_enrich_writes_the_output_and_reports(
    env: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"name": "A"}\n"B"\n[1]\n')
    out = tmp_path / "out.jsonl"
    assert main(["enrich", str(source), "-o", str(out), "--output", "ceo: the CEO"]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["status"] for x in lines] == ["completed", "completed", "invalid"]
    assert set(lines[0]["output"]) == {"ceo"}
    err = capsys.readouterr().err
    assert "2 completed, 0 failed, 1 invalid" in err and "errors.jsonl" in err


@pytest.mark.slow
@pytest.mark.parallel_emulator(time_scale=0.002)  # a pro run takes 0.2-1.2 s
def test_progress_is_shown_on_a_terminal(parallel_emulator: EmulatorServer) -> None:
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, **parallel_emulator.env}
    with open(follower, "w") as tty:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "parallel_tools",
                "run",
                "Why is the sky blue?",
                "--output",
                "One paragraph",
                "--processor",
                "pro",
            ],
            stdout=subprocess.PIPE,
            stderr=tty,
            env=env,
            timeout=60,
        )
    shown = os.read(leader, 65536).decode(errors="replace")
    os.close(leader)
    assert done.returncode == 0
    assert "\r\x1b[2K" in shown  # the status line redraws itself
    assert "running" in shown or "queued" in shown


def test_without_the_emulator_extra_the_install_command_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("uvicorn", "starlette") else real(name, *a),
    )
    assert main(["run", "--emulator", "United Nations", "--output", "x"]) == 2
    assert 'pip install "parallel-tools[emulator]"' in capsys.readouterr().err
    assert main(["emulator", "--port", "0"]) == 2
    assert "parallel-tools[emulator]" in capsys.readouterr().err
