"""Start the emulator in its own process for benchmarks, so it never shares a CPU or the GIL
with the client being measured."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def emulator_process(time_scale: float, *extra: str) -> Iterator[str]:
    """Run `parallel-tools emulator` in a subprocess; yield its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "parallel_tools",
            "emulator",
            "--port",
            str(port),
            "--time-scale",
            str(time_scale),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/_emulator/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the emulator did not start")
        yield url
    finally:
        process.terminate()
        process.wait(10)
