"""Every example runs offline against the emulator and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"

EXPECTED = {
    "quickstart_1_text.py": "10-1945 [1][2][3][4]",
    "quickstart_2_structured.py": "Founded 10-1945, 10001+ employees.",
    "quickstart_3_structured_input.py": '"founding_date": "10-1945"',
    "enrich_csv.py": "5 enriched, 1 invalid, 0 failed",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_offline(name: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARALLEL_")}
    env["PARALLEL_EMULATOR_TIME_SCALE"] = "0.001"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert EXPECTED[name] in done.stdout
    assert "built-in emulator" in done.stderr


def test_every_example_is_tested() -> None:
    found = {
        p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith(("_", "langchain", "mcp"))
    }
    assert found <= set(EXPECTED), found - set(EXPECTED)
