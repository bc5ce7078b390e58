"""``parallel-tools emulator`` as a real subprocess: the seed's cURL quickstart, and the CLI."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from parallel_tools.emulator._cli import add_arguments, run

# `python -m parallel_tools.emulator` is the same command without the rest of the CLI; the
# quickstart test below goes through the real `parallel-tools emulator`.
COMMAND = [sys.executable, "-m", "parallel_tools.emulator"]
FULL_COMMAND = [sys.executable, "-m", "parallel_tools", "emulator"]


class Subprocess:
    """``parallel-tools emulator --port 0`` in a subprocess; its first line is the base URL."""

    def __init__(self, *args: str, command: list[str] = COMMAND) -> None:
        self.proc = subprocess.Popen(
            [*command, "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            stderr = self.stop()
            raise AssertionError(f"The emulator did not start: {stderr}")

    def stop(self) -> str:
        self.proc.terminate()
        _, stderr = self.proc.communicate(timeout=10)
        return stderr


@pytest.fixture
def emulator_process() -> Iterator[Subprocess]:
    process = Subprocess(command=FULL_COMMAND)
    yield process
    process.stop()


def curl(*args: str) -> str:
    done = subprocess.run(
        ["curl", "-s", "--max-time", "30", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl binary")
def test_the_seed_curl_quickstart(emulator_process: Subprocess) -> None:
    """The quickstart's commands, with only the base URL changed."""
    key = "PARALLEL_API_KEY"
    run_json = curl(
        f"{emulator_process.base_url}/v1/tasks/runs",
        "-H",
        f"x-api-key: {key}",
        "-H",
        "Content-Type: application/json",
        "-d",
        """{
      "task_spec": {
          "output_schema": "The founding date of the company in the format MM-YYYY"
      },
      "input": "United Nations",
      "processor": "base"
  }""",
    )
    run = json.loads(run_json)
    assert run["status"] == "queued" and run["processor"] == "base" and run["metadata"] is None
    result = json.loads(
        curl(
            f"{emulator_process.base_url}/v1/tasks/runs/{run['run_id']}/result",
            "-H",
            f"x-api-key: {key}",
        )
    )
    assert result["run"]["status"] == "completed"
    assert result["run"]["run_id"] == run["run_id"]
    assert result["output"] == {
        "type": "text",
        "content": "10-1945",
        "basis": [
            {
                "field": "output",
                "citations": [
                    {"title": None, "url": url, "excerpts": []}
                    for url in (
                        "https://www.un.org/en/about-us/history-of-the-un",
                        "https://history.state.gov/milestones/1937-1945/un",
                        "https://en.wikipedia.org/wiki/United_Nations",
                        "https://research.un.org/en/unmembers/founders",
                    )
                ],
                "reasoning": result["output"]["basis"][0]["reasoning"],
                "confidence": "",
            }
        ],
    }
    assert "24 October 1945" in result["output"]["basis"][0]["reasoning"]


def test_cli_options_take_effect() -> None:
    process = Subprocess("--api-key", "k1", "--fault", "create:503:times=1", "--time-scale", "0")
    with httpx.Client(base_url=process.base_url) as client:
        body = {"input": "x", "processor": "lite"}
        assert (
            client.post("/v1/tasks/runs", json=body, headers={"x-api-key": "k2"}).status_code == 503
        )  # the fault fires before authentication
        assert (
            client.post("/v1/tasks/runs", json=body, headers={"x-api-key": "k2"}).status_code == 401
        )
        created = client.post("/v1/tasks/runs", json=body, headers={"x-api-key": "k1"})
        assert created.status_code == 202
        counts = client.get("/_emulator/counts").json()["counts"]
        assert counts == {"create": 3}
    stderr = process.stop()
    assert "Traceback" not in stderr


def test_cli_loads_fixture_files(tmp_path: Path) -> None:
    path = tmp_path / "answers.json"
    path.write_text(json.dumps([{"input": "Initech", "output": "1992"}]))
    process = Subprocess("--fixtures", str(path), "--no-builtin-fixtures")
    try:
        with httpx.Client(base_url=process.base_url, headers={"x-api-key": "k"}) as client:
            for question, expected in (("Initech", "1992"), ("United Nations", None)):
                run = client.post(
                    "/v1/tasks/runs",
                    json={
                        "input": question,
                        "processor": "lite",
                        "task_spec": {"output_schema": "The founding year"},
                    },
                ).json()
                content = client.get(f"/v1/tasks/runs/{run['run_id']}/result").json()["output"][
                    "content"
                ]
                assert (content == expected) if expected else (content != "10-1945")
    finally:
        process.stop()


def test_bad_cli_input_exits_with_a_message(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*COMMAND, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    bad_fault = run("--fault", "create:frobnicate")
    assert bad_fault.returncode == 2 and "Cannot read fault" in bad_fault.stderr
    missing = run("--port", "0", "--fixtures", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "Cannot read fixtures" in missing.stderr
    negative = run("--time-scale", "-1")
    assert negative.returncode == 2
    empty_key = run("--port", "0", "--api-key", "")
    assert empty_key.returncode == 2 and "non-empty" in empty_key.stderr


def test_cli_defaults_and_handler() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.time_scale) == ("127.0.0.1", 8787, 0.001)
    assert args.handler is run
    args = parser.parse_args(["--fault", "create:429", "--fault", "result:hold_408"])
    assert [f.kind for f in args.faults] == ["status", "hold_408"]


def test_importing_the_package_and_cli_stays_light() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); "
        "import parallel_tools.emulator, parallel_tools.emulator._cli, parallel_tools.testing; "
        "from parallel_tools.emulator import Fault; Fault.parse('create:429'); "
        "import argparse; p = argparse.ArgumentParser(); "
        "parallel_tools.emulator._cli.add_arguments(p); p.parse_args(['--fault', 'create:429']); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn')); "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
