"""`connect()`: a client for the real API when there is a key, else for a local emulator.

Scripts, examples and the CLI use it so that the same code runs offline (against the built-in
emulator, started in this process) and online (against Parallel), saying which one it uses.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any, TextIO

from ._client import AsyncTaskClient, TaskClient
from ._config import API_KEY_ENV
from ._exceptions import ConfigurationError, require

__all__ = ["EMULATOR_TIME_SCALE", "api_endpoint", "connect", "connect_async"]

EMULATOR_TIME_SCALE = 0.02
"""Emulated runs take their processor's real latency times this: a `base` run takes 0.3-2 s,
long enough to watch progress, short enough not to wait for. `PARALLEL_EMULATOR_TIME_SCALE`
overrides it (tests set it lower)."""
TIME_SCALE_ENV = "PARALLEL_EMULATOR_TIME_SCALE"


@contextlib.contextmanager
def api_endpoint(
    *,
    emulator: bool | None = None,
    time_scale: float | None = None,
    notice: TextIO | None = sys.stderr,
) -> Iterator[dict[str, Any]]:
    """Where to send requests, as client keyword arguments (`api_key`, `base_url`).

    The same choice as `connect()` (real API with a key, else an emulator started in this
    process and stopped when the block ends), for code that builds its own clients. For the
    real API it yields `{}`: the clients read the environment themselves.
    """
    has_key = bool(os.environ.get(API_KEY_ENV, "").strip())
    if emulator is False or (emulator is None and has_key):
        if not has_key:
            raise ConfigurationError(
                f"No API key: set {API_KEY_ENV} (create one at https://platform.parallel.ai), "
                "or use the built-in emulator to try it offline (--emulator on the command line)."
            )
        if notice:
            print("Using Parallel's API (runs are billed).", file=notice)
        yield {}
        return
    require("The built-in emulator", "emulator", "starlette", "uvicorn")
    from .emulator import Emulator

    if time_scale is None:
        time_scale = float(os.environ.get(TIME_SCALE_ENV) or EMULATOR_TIME_SCALE)
    with Emulator(time_scale=time_scale).serve(port=0) as server:
        if notice:
            print(
                f"Using the built-in emulator at {server.base_url}: answers are emulated, "
                "not researched.",
                file=notice,
            )
        yield {"api_key": server.api_key, "base_url": server.base_url}


@contextlib.contextmanager
def connect(
    *,
    emulator: bool | None = None,
    time_scale: float | None = None,
    notice: TextIO | None = sys.stderr,
    **client_options: Any,
) -> Iterator[TaskClient]:
    """A `TaskClient` for Parallel's API, or for an emulator started in this process.

    Args:
        emulator: True for the emulator, False for the real API, None (the default) for the
            real API when `PARALLEL_API_KEY` is set and the emulator otherwise.
        time_scale: How fast emulated runs go (their documented latency times this); default
            `PARALLEL_EMULATOR_TIME_SCALE`, else `EMULATOR_TIME_SCALE`.
        notice: Where to say which one is used (None for silence).
        **client_options: Passed to `TaskClient`.

    Raises:
        ConfigurationError: `emulator=False` without a key, or the emulator extra is missing.
    """
    with (
        api_endpoint(emulator=emulator, time_scale=time_scale, notice=notice) as endpoint,
        TaskClient(**{**client_options, **endpoint}) as client,
    ):
        yield client


@contextlib.asynccontextmanager
async def connect_async(
    *,
    emulator: bool | None = None,
    time_scale: float | None = None,
    notice: TextIO | None = sys.stderr,
    **client_options: Any,
) -> AsyncIterator[AsyncTaskClient]:
    """The `AsyncTaskClient` twin of `connect()`."""
    with api_endpoint(emulator=emulator, time_scale=time_scale, notice=notice) as endpoint:
        async with AsyncTaskClient(**{**client_options, **endpoint}) as client:
            yield client
