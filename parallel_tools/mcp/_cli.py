"""`parallel-tools mcp`: serve the MCP server over stdio (default) or Streamable HTTP.

`parallel-tools --help` imports this module, so it imports nothing beyond the standard
library at module level; the server's modules load only when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import logging
import os
import sys
from typing import Any

__all__ = ["add_arguments", "run"]

_EPILOG = """\
environment:
  PARALLEL_API_KEY                 the Parallel API key (required for real runs)
  PARALLEL_BASE_URL                another API URL (e.g. a local emulator)
  PARALLEL_MCP_PROCESSORS          allowed processors, comma-separated (default lite,base,core)
  PARALLEL_MCP_DEFAULT_PROCESSOR   processor used when the model names none (default base)
  PARALLEL_MCP_MAX_WAIT            seconds a call may wait for a run (default 40, max 45)
  PARALLEL_MCP_MAX_BATCH_ITEMS     most items per enrichment (default 100)
  PARALLEL_MCP_MAX_OUTPUT_TOKENS   tool output budget (default and max 20000)
  PARALLEL_MCP_GENERIC_TOOLS       0 to offer only the task tools (like --no-generic-tools)
  PARALLEL_MCP_TASKS               task modules, comma-separated (like --tasks)
  PARALLEL_MCP_TOKENS              HTTP bearer tokens, comma-separated (required for http)
  PARALLEL_MCP_ALLOWED_HOSTS       HTTP host names clients may use, beyond loopback
  PARALLEL_MCP_ALLOWED_ORIGINS     extra browser origins allowed over HTTP
Flags override the environment. A tier name in the processor list allows its -fast twin.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `mcp` subcommand's options on `parser`."""
    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="stdio for local hosts (default), http for Streamable HTTP",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP address (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default %(default)s)")
    parser.add_argument("--path", default="/mcp", help="HTTP endpoint path (default %(default)s)")
    parser.add_argument(
        "--tasks",
        action="append",
        metavar="REF",
        help="offer the Task definitions in REF as typed tools: a module (mypkg.tasks), "
        "MODULE:ATTRIBUTE, or a .py file; repeatable",
    )
    parser.add_argument(
        "--processors",
        metavar="LIST",
        help="processors the model may use, comma-separated (default lite,base,core)",
    )
    parser.add_argument("--default-processor", metavar="NAME", help="default processor")
    parser.add_argument(
        "--max-wait", type=float, metavar="SECONDS", help="longest wait per call (max 45)"
    )
    parser.add_argument("--max-batch-items", type=int, metavar="N", help="most items per batch")
    parser.add_argument("--max-output-tokens", type=int, metavar="N", help="tool output budget")
    parser.add_argument(
        "--no-generic-tools",
        action="store_true",
        help="offer only the --tasks tools (and get_research_result)",
    )
    parser.add_argument(
        "--allowed-hosts",
        metavar="LIST",
        help="HTTP host names clients may use beyond loopback, comma-separated",
    )
    parser.add_argument(
        "--allowed-origins", metavar="LIST", help="extra browser origins allowed over HTTP"
    )
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="run against a built-in Task API emulator (no key needed, answers are fake)",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level on stderr (default %(default)s)",
    )
    parser.set_defaults(handler=run)


def _split(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


def run(args: argparse.Namespace) -> int:
    """Run the server; returns the process exit code."""
    from ..cli import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_OK

    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    if importlib.util.find_spec("mcp") is None:
        sys.stderr.write('The MCP server needs the mcp extra: pip install "parallel-tools[mcp]"\n')
        return EXIT_ERROR
    with contextlib.ExitStack() as stack:
        streams = None
        if args.transport == "stdio":
            from ._stdio import claimed_stdio

            # Claimed before any task module is imported: a print there must not reach the wire.
            streams = stack.enter_context(claimed_stdio())
        try:
            tasks, settings, http = _configure(args)
        except ValueError as exc:
            sys.stderr.write(f"parallel-tools mcp: {exc}\n")
            return EXIT_BAD_INPUT
        if args.emulator:
            settings = _start_emulator(stack, settings)
        if streams is not None:
            from ._stdio import serve_stdio

            serve_stdio(tasks, settings, log_level=args.log_level, streams=streams)
        else:
            from ._http import serve_http

            serve_http(tasks, settings, http, log_level=args.log_level)
    return EXIT_OK


def _configure(args: argparse.Namespace) -> tuple[list[Any], Any, Any]:
    """Tasks, server settings and HTTP settings from the flags and the environment.

    Raises:
        ValueError: anything that is wrong, with a message for the operator.
    """
    from ._loading import load_tasks
    from ._manifest import build_manifest
    from ._settings import HttpSettings, ServerSettings, expand_processors

    refs = list(args.tasks or []) or list(_split(os.environ.get("PARALLEL_MCP_TASKS")) or [])
    tasks = load_tasks(refs)
    processors = _split(args.processors)
    settings = ServerSettings.from_env(
        processors=expand_processors(processors) if processors else None,
        default_processor=args.default_processor,
        max_wait=args.max_wait,
        max_batch_items=args.max_batch_items,
        max_output_tokens=args.max_output_tokens,
        generic_tools=False if args.no_generic_tools else None,
    )
    http = None
    if args.transport == "http":
        http = HttpSettings.from_env(
            host=args.host,
            port=args.port,
            path=args.path,
            allowed_hosts=_split(args.allowed_hosts),
            allowed_origins=_split(args.allowed_origins),
        )
    build_manifest(tasks, settings)  # task/settings conflicts surface now, not mid-session
    return tasks, settings, http


def _start_emulator(stack: contextlib.ExitStack, settings: Any) -> Any:
    """Start the Task API emulator in this process; returns `settings` pointed at it."""
    from .._connect import api_endpoint

    endpoint = stack.enter_context(api_endpoint(emulator=True))
    return dataclasses.replace(settings, **endpoint)
