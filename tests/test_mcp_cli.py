"""`parallel-tools mcp` configuration: settings from flags and the environment, task loading,
and the refusals an operator sees before anything is served."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

import parallel_tools
from parallel_tools import Task, TaskFailedError, TaskRun
from parallel_tools.cli import EXIT_BAD_INPUT, build_parser, main
from parallel_tools.mcp import ServerSettings, load_tasks
from parallel_tools.mcp._manifest import build_manifest
from parallel_tools.mcp._render import error_text
from parallel_tools.mcp._settings import expand_processors

TASKS_MODULE = """
from pydantic import BaseModel
from parallel_tools import Task

class Person(BaseModel):
    name: str

one = Task("who_is", "Who is this person?", input=Person, output="A short bio", processor="lite")
two = Task("what_is", "Explain a thing.", output="A definition", processor="base")
_hidden = Task("hidden", "Not offered.", output="x")
pair = [one, two]
not_a_task = 42
"""


@pytest.fixture
def tasks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "operator_tasks.py"
    path.write_text(textwrap.dedent(TASKS_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return path


def test_the_public_names_resolve_and_are_documented() -> None:
    import parallel_tools.mcp as package

    for name in package.__all__:
        assert getattr(package, name).__doc__, name


def test_defaults_are_cheap() -> None:
    settings = ServerSettings()
    assert settings.processors == ("lite", "lite-fast", "base", "base-fast", "core", "core-fast")
    assert settings.default_processor == "base"
    assert settings.most_expensive in ("core", "core-fast")
    assert settings.max_wait <= 45 and settings.max_output_tokens <= 20_000


def test_a_tier_allows_its_fast_twin_but_not_the_other_way() -> None:
    assert expand_processors(["core"]) == ("core", "core-fast")
    assert expand_processors(["core-fast", " lite "]) == ("lite", "lite-fast", "core-fast")
    with pytest.raises(ValueError, match="Unknown processor 'turbo'"):
        expand_processors(["turbo"])


def test_settings_from_the_environment() -> None:
    settings = ServerSettings.from_env(
        {
            "PARALLEL_MCP_PROCESSORS": "lite, pro",
            "PARALLEL_MCP_MAX_WAIT": "20",
            "PARALLEL_MCP_MAX_BATCH_ITEMS": "5",
            "PARALLEL_MCP_GENERIC_TOOLS": "0",
        }
    )
    assert settings.processors == ("lite", "lite-fast", "pro", "pro-fast")
    # base is not allowed, so the cheapest allowed processor becomes the default.
    assert settings.default_processor == "lite"
    assert settings.max_wait == 20 and settings.max_batch_items == 5
    assert settings.generic_tools is False
    # Flags (overrides) win over the environment.
    assert ServerSettings.from_env({"PARALLEL_MCP_MAX_WAIT": "20"}, max_wait=30).max_wait == 30


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_wait": 60}, "max_wait"),
        ({"max_wait": 0}, "max_wait"),
        ({"default_processor": "pro"}, "not among the allowed"),
        ({"processors": ()}, "at least one"),
        ({"max_output_tokens": 50_000}, "max_output_tokens"),
        ({"progress_interval": 30}, "progress_interval"),
        ({"max_batch_items": 0}, "max_batch_items"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerSettings(**options)  # type: ignore[arg-type]


def test_a_malformed_number_in_the_environment_names_the_variable() -> None:
    with pytest.raises(ValueError, match="PARALLEL_MCP_MAX_WAIT"):
        ServerSettings.from_env({"PARALLEL_MCP_MAX_WAIT": "soon"})


def test_the_api_key_is_not_in_the_settings_repr() -> None:
    assert "sk-very-secret" not in repr(ServerSettings(api_key="sk-very-secret"))


def test_tasks_load_from_modules_attributes_and_files(tasks_module: Path) -> None:
    assert [t.name for t in load_tasks(["operator_tasks"])] == ["who_is", "what_is"]
    assert [t.name for t in load_tasks(["operator_tasks:one"])] == ["who_is"]
    assert [t.name for t in load_tasks(["operator_tasks:pair"])] == ["who_is", "what_is"]
    assert [t.name for t in load_tasks([str(tasks_module)])] == ["who_is", "what_is"]
    # The same task reached twice is offered once.
    assert len(load_tasks(["operator_tasks", "operator_tasks:one"])) == 2


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_such_module_here", "cannot import"),
        ("operator_tasks:missing", "no attribute"),
        ("operator_tasks:not_a_task", "expected a Task"),
        ("json", "no Task found"),
        ("/nowhere/tasks.py", "no such file"),
    ],
)
def test_bad_task_references_are_explained(tasks_module: Path, ref: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_tasks([ref])


def test_task_names_must_not_clash() -> None:
    research = Task("research", "Clashes with the built-in tool.", output="x", processor="lite")
    with pytest.raises(ValueError, match="built-in tool"):
        build_manifest([research], ServerSettings())
    a = Task("same", "First.", output="x", processor="lite")
    b = Task("same", "Second.", output="y", processor="lite")
    with pytest.raises(ValueError, match="same"):
        build_manifest([a, b], ServerSettings())


def test_the_mcp_command_is_registered_with_its_options() -> None:
    args = build_parser().parse_args(
        ["mcp", "--transport", "http", "--port", "9000", "--processors", "lite,core"]
    )
    assert args.transport == "http" and args.port == 9000 and args.processors == "lite,core"
    assert callable(args.handler)


def test_help_documents_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["mcp", "--help"])
    out = capsys.readouterr().out
    assert "PARALLEL_MCP_TOKENS" in out and "PARALLEL_MCP_PROCESSORS" in out


def test_http_without_tokens_is_refused_before_serving(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PARALLEL_MCP_TOKENS", raising=False)
    assert main(["mcp", "--transport", "http"]) == EXIT_BAD_INPUT
    assert "PARALLEL_MCP_TOKENS" in capsys.readouterr().err


def test_a_task_on_a_processor_not_allowed_is_refused(
    tasks_module: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARALLEL_MCP_TOKENS", "a-token")
    code = main(["mcp", "--transport", "http", "--tasks", "operator_tasks", "--processors", "lite"])
    assert code == EXIT_BAD_INPUT
    assert "'what_is' runs on processor 'base'" in capsys.readouterr().err


def test_unexpected_errors_do_not_leak_their_details() -> None:
    text = error_text(RuntimeError("internal detail: /etc/secret"), tool="research")
    assert "internal detail" not in text and "server's log" in text


def test_errors_never_show_the_key() -> None:
    key = "sk-live-abcdef0123456789"
    run = TaskRun(run_id="trun_1", status="failed", is_active=False)
    failed = TaskFailedError(f"Run failed: upstream echoed {key}", run=run)
    assert key not in error_text(failed, tool="research", api_key=key)


# --- Shipped host configurations ---------------------------------------------------------------

SERVERS = Path(__file__).parents[1] / "servers"


def test_host_configs_start_this_server() -> None:
    configs = {
        "claude_desktop_config.json": "mcpServers",
        "claude_code.mcp.json": "mcpServers",
        "cursor.mcp.json": "mcpServers",
        "vscode.mcp.json": "servers",
    }
    for name, key in configs.items():
        entry = json.loads((SERVERS / name).read_text())[key]["parallel-research"]
        assert entry["args"][-2:] == ["parallel-tools", "mcp"], name
        assert "parallel-tools[mcp]" in entry["args"], name
        assert "PARALLEL_API_KEY" in entry["env"], name
    http = json.loads((SERVERS / "vscode-http.mcp.json").read_text())["servers"]
    assert http["parallel-research"]["headers"]["Authorization"].startswith("Bearer ")


def test_registry_server_json_matches_the_package() -> None:
    server = json.loads((SERVERS / "server.json").read_text())
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", server["name"])
    assert len(server["description"]) <= 100
    (package,) = server["packages"]
    assert server["version"] == package["version"] == parallel_tools.__version__
    assert package["registryType"] == "pypi" and package["identifier"] == "parallel-tools"
    assert package["packageArguments"] == [{"type": "positional", "value": "mcp"}]
    assert package["transport"] == {"type": "stdio"}
    key = next(v for v in package["environmentVariables"] if v["name"] == "PARALLEL_API_KEY")
    assert key["isSecret"] and key["isRequired"]
