"""Find the `Task` definitions an operator wants served as typed tools.

Convention for `--tasks REF` (repeatable):

* `mypkg.tasks`: every module-level `Task` in that module (names starting with `_` skipped),
  in definition order;
* `mypkg.tasks:company_profile`: one attribute, a `Task` or a list/tuple of them;
* `path/to/tasks.py` (or `path/to/tasks.py:name`): the same for a file that is not on the
  import path, which suits host configs that just point at a script.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from .._tasks import Task

__all__ = ["load_tasks"]


def load_tasks(refs: Iterable[str]) -> list[Task[Any, Any]]:
    """Import every reference and collect its `Task` definitions.

    Raises:
        ValueError: a reference cannot be imported, names no `Task`, or two tasks share a name.
    """
    tasks: list[Task[Any, Any]] = []
    for ref in refs:
        ref = ref.strip()
        if not ref:
            continue
        module_ref, _, attr = _split_ref(ref)
        module = _import(module_ref, ref)
        if attr:
            if not hasattr(module, attr):
                raise ValueError(f"--tasks {ref}: {module_ref} has no attribute {attr!r}.")
            found = _as_tasks(getattr(module, attr), ref)
        else:
            found = [
                value
                for name, value in vars(module).items()
                if isinstance(value, Task) and not name.startswith("_")
            ]
        if not found:
            raise ValueError(
                f"--tasks {ref}: no Task found. Define module-level Task(...) objects there, or "
                "name one with MODULE:ATTRIBUTE."
            )
        tasks.extend(found)
    unique: dict[str, Task[Any, Any]] = {}
    for task in tasks:
        known = unique.get(task.name)
        if known is not None and known is not task:
            raise ValueError(f"Two tasks are named {task.name!r}; tool names must be unique.")
        unique[task.name] = task
    return list(unique.values())


def _split_ref(ref: str) -> tuple[str, str, str]:
    # A Windows drive letter ("C:\...") is not an attribute separator.
    head, sep, attr = ref.rpartition(":")
    if not sep or not head or "/" in attr or "\\" in attr or len(head) == 1:
        return ref, "", ""
    return head, sep, attr


def _import(module_ref: str, ref: str) -> ModuleType:
    try:
        if module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref:
            return _import_file(Path(module_ref))
        return importlib.import_module(module_ref)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"--tasks {ref}: cannot import {module_ref}: {exc}") from exc


def _import_file(path: Path) -> ModuleType:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"--tasks {path}: no such file.")
    name = f"_parallel_tools_tasks_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"--tasks {path}: not a Python file.")
    module = importlib.util.module_from_spec(spec)
    # Registered before running so dataclasses and pydantic can resolve the module's names.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _as_tasks(value: Any, ref: str) -> list[Task[Any, Any]]:
    if isinstance(value, Task):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, Task) for v in value):
        return list(value)
    raise ValueError(
        f"--tasks {ref}: expected a Task or a list of Tasks, got {type(value).__name__}."
    )
