"""Fixtures shared by the test suite.

The ``parallel_emulator`` fixture itself comes from the package's pytest plugin
(``parallel_tools.testing``); the ones here build on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from parallel_tools.emulator import EmulatorServer


@pytest.fixture
def api(parallel_emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """A raw httpx client for the running emulator, authenticated."""
    with httpx.Client(
        base_url=parallel_emulator.base_url,
        headers={"x-api-key": parallel_emulator.api_key},
        timeout=30,
    ) as client:
        yield client
