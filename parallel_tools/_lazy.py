"""Lazy exports for the adapter packages, whose dependencies are heavy or optional.

`parallel-tools --help` and the MCP server's start-up import every subcommand's package; those
packages must not import starlette, uvicorn or the MCP SDK until a name is actually used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any


def lazy_exports(
    package: str,
    homes: Mapping[str, str],
    names: Sequence[str],
    namespace: MutableMapping[str, Any],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module `__getattr__` and `__dir__` that import each name from its home on first use.

    Args:
        package: The package's `__name__`.
        homes: Each lazy name's module, relative to the package (e.g. `"._server"`).
        names: The package's `__all__`.
        namespace: The package's `globals()`, where a loaded name is cached.
    """

    def getattr_(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted([*namespace, *names])

    return getattr_, dir_
