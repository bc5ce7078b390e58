"""The official MCP Inspector CLI against `parallel-tools mcp` over stdio (scripts/inspector_check.sh).

Slow (it installs Node and the Inspector on first use, then launches the server three times),
so it is marked `slow`; it skips only when the npm registry cannot be reached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "inspector_check.sh"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_inspector_lists_and_calls_the_tools() -> None:
    if shutil.which("npx") is None or shutil.which("bash") is None:
        pytest.skip("npx (Node.js) and bash are needed to run the MCP Inspector")
    done = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=590,
    )
    if done.returncode == 77:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stderr
    assert "cited answer with" in done.stdout
