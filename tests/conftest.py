"""Fixtures shared by the test suite.

The ``parallel_emulator`` fixture itself comes from the package's pytest plugin
(``parallel_tools.testing``); the ones here build on it.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from parallel_tools.emulator import EmulatorServer

# Building an SSL context reads the CA bundle (~50 ms); every client shares this one.
SSL_CONTEXT = ssl.create_default_context()


@pytest.fixture
def api(parallel_emulator: EmulatorServer) -> Iterator[httpx.Client]:
    """A raw httpx client for the running emulator, authenticated."""
    with httpx.Client(
        base_url=parallel_emulator.base_url,
        headers={"x-api-key": parallel_emulator.api_key},
        timeout=30,
        verify=SSL_CONTEXT,
    ) as client:
        yield client
