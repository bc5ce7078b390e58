"""The package's surface: exports, import weight, tasks, the console script."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import BaseModel

import parallel_tools
from parallel_tools import InvalidInputError, SchemaError, Task


def test_all_lists_exactly_the_public_names() -> None:
    public = {n for n in dir(parallel_tools) if not n.startswith(("_", "@"))}
    modules = {"cli", "testing", "emulator", "langchain", "mcp", "enrich"}
    assert set(parallel_tools.__all__) == public - modules
    for name in parallel_tools.__all__:
        assert getattr(parallel_tools, name).__doc__ or name.isupper(), name


def test_importing_the_core_imports_no_adapter_dependencies() -> None:
    # httpx itself imports rich and click when they are installed (for its own CLI), so the
    # check is on what parallel_tools adds beyond httpx and pydantic.
    code = (
        "import sys, httpx, pydantic; before = set(sys.modules); import parallel_tools; "
        "bad = [m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('langchain', 'langchain_core', 'mcp', 'starlette', 'rich', 'uvicorn', 'click')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_console_script_has_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "parallel_tools", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert "exit codes" in done.stdout


class In(BaseModel):
    company_name: str


class Out(BaseModel):
    founding_date: str


def test_task_names_are_tool_names() -> None:
    for bad in ("", "has space", "1starts_with_digit", "x" * 65, "dots.no"):
        with pytest.raises(ValueError):
            Task(bad, "d", output=Out)
    assert Task("ok_name-2", "d", output=Out).name == "ok_name-2"


def test_task_spec_is_compiled_at_definition() -> None:
    task = Task("profile", "Profile a company.", input=In, output=Out, processor="core")
    assert task.spec is not None
    assert task.spec["output_schema"]["json_schema"]["additionalProperties"] is False
    assert task.spec["input_schema"]["json_schema"]["required"] == ["company_name"]
    assert task.output_model is Out and task.input_model is In

    class Bad(BaseModel):
        bag: dict[str, str]

    with pytest.raises(SchemaError):
        Task("bad", "d", output=Bad)


def test_task_inputs_are_validated() -> None:
    task = Task("profile", "Profile a company.", input=In, output=Out)
    assert task.prepare_input({"company_name": "UN"}) == {"company_name": "UN"}
    assert task.prepare_input(In(company_name="UN")) == {"company_name": "UN"}
    with pytest.raises(InvalidInputError, match="company_name"):
        task.prepare_input({"name": "UN"})
    text = Task("ask", "Answer a question.", output="A short answer")
    assert text.prepare_input("Who?") == "Who?"
    with pytest.raises(InvalidInputError):
        text.prepare_input("   ")
    with pytest.raises(InvalidInputError):
        text.prepare_input(42)
