"""Pytest fixtures that run code against a local Task API emulator instead of the paid API.

Installing parallel-tools registers this module as a pytest plugin (entry point
``parallel_tools``), so any test suite can use the fixtures below without importing anything.
The module itself only imports pytest: the emulator (starlette, uvicorn) is loaded the first
time a test asks for it, so the plugin costs nothing in suites that never use it.

Fixtures:
    parallel_emulator: A running emulator, reset for each test. It is an
        :class:`~parallel_tools.emulator.EmulatorServer` with ``base_url``, ``api_key``,
        ``env`` (``PARALLEL_BASE_URL`` and ``PARALLEL_API_KEY`` for clients that read the
        environment) and ``emulator`` (the :class:`~parallel_tools.emulator.Emulator`, to add
        faults and fixtures and to read ``request_counts``)::

            def test_client(parallel_emulator):
                client = Parallel(api_key=parallel_emulator.api_key,
                                  base_url=parallel_emulator.base_url)
                parallel_emulator.emulator.add_fault(Fault(endpoint="create", status=429))
                ...

    parallel_emulator_options: The emulator options for the current test, a dict of
        :meth:`~parallel_tools.emulator.Emulator.configure` keyword arguments. Override it in a
        ``conftest.py`` or test module to change them for many tests at once.

Marker:
    ``@pytest.mark.parallel_emulator(**options)`` changes options for one test, e.g.
    ``@pytest.mark.parallel_emulator(time_scale=0.01, max_result_hold=1)``. Marker options win
    over ``parallel_emulator_options``.

One server is started per test session, on a free loopback port, in a background thread:
about half a second once (mostly importing starlette and uvicorn), where starting and stopping
a server per test would cost about 0.3 s each time. Every test gets it with no runs, groups,
faults or custom fixtures, request counts at zero, and the options above applied (the reset
takes about 0.2 ms); defaults are ``time_scale=0.0001`` (a ``lite`` run finishes in 1-6 ms)
and any non-empty API key accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .emulator import EmulatorServer

__all__ = ["DEFAULT_TEST_OPTIONS", "parallel_emulator", "parallel_emulator_options"]

DEFAULT_TEST_OPTIONS: dict[str, Any] = {"time_scale": 0.0001}
"""Options every test starts from, before ``parallel_emulator_options`` and the marker."""

_MARKER = "parallel_emulator"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, so suites run with ``--strict-markers`` accept it."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): options for the parallel_emulator fixture in this test "
        "(time_scale, max_result_hold, api_keys, webhook_secret, seed, ...)",
    )


@pytest.fixture(scope="session")
def _parallel_emulator_server() -> Iterator[EmulatorServer]:
    from .emulator import Emulator

    emulator = Emulator(**DEFAULT_TEST_OPTIONS)
    with emulator.serve(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def parallel_emulator_options() -> dict[str, Any]:
    """Emulator options for a test; override this fixture to change them (empty by default)."""
    return {}


@pytest.fixture
def parallel_emulator(
    request: pytest.FixtureRequest,
    _parallel_emulator_server: EmulatorServer,
    parallel_emulator_options: dict[str, Any],
) -> Iterator[EmulatorServer]:
    """A running Task API emulator with fresh state; see the module docstring."""
    options = {**DEFAULT_TEST_OPTIONS, **parallel_emulator_options}
    for marker in reversed(list(request.node.iter_markers(_MARKER))):
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{_MARKER} takes keyword options only, got {marker.args!r}"
            )
        options.update(marker.kwargs)
    emulator = _parallel_emulator_server.emulator
    emulator.reset(restore_options=True)
    emulator.configure(**options)
    try:
        yield _parallel_emulator_server
    finally:
        # Faults and holds must not leak into the next test; runs are dropped too so a test can
        # count on an empty emulator.
        emulator.reset(restore_options=True)
