"""The LangChain example runs offline, against the in-process emulator, and says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parent.parent / "examples" / "langchain_agent.py"


def test_the_agent_example_runs_offline_on_the_emulator() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARALLEL_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Using the local emulator" in done.stdout
    assert "--- company_profile (success)" in done.stdout
    assert "--- parallel_research (success)" in done.stdout
    assert "parsed = CompanyProfile(" in done.stdout
    assert "Agent: Done: 2 cited answers" in done.stdout
