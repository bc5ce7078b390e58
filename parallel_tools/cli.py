"""The `parallel-tools` command.

Each subcommand lives beside the code it drives and registers itself here; this module only
builds the parser, so `parallel-tools --help` (and the MCP server's start-up) stays fast.

Exit codes: 0 ok, 1 unexpected error, 2 bad input, 3 authentication, 4 API error, 5 timeout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_AUTH = 3
EXIT_API = 4
EXIT_TIMEOUT = 5

_EPILOG = """\
exit codes: 0 ok, 1 unexpected error, 2 bad input, 3 authentication, 4 API error, 5 timeout

Without PARALLEL_API_KEY, use --emulator (where offered) to run against the built-in emulator.
"""


def _unavailable(parser: argparse.ArgumentParser, name: str, error: ImportError) -> None:
    def handler(args: argparse.Namespace) -> int:
        print(f"parallel-tools {name} is not available: {error}", file=sys.stderr)
        return EXIT_ERROR

    parser.set_defaults(handler=handler)


def _emulator_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "emulator",
        help="run the local Task API emulator (offline development and tests)",
        description="Serve a local emulation of Parallel's Task API. Point PARALLEL_BASE_URL "
        "(or the official SDK's base_url) at it; answers are emulated and runs finish fast.",
    )
    try:
        from .emulator._cli import add_arguments
    except ImportError as exc:
        _unavailable(parser, "emulator", exc)
        return
    add_arguments(parser)


def _mcp_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "mcp",
        help="serve Parallel research to MCP clients (Claude, Cursor, VS Code, ...)",
        description="Run the parallel-tools MCP server over stdio (default) or Streamable HTTP.",
    )
    try:
        from .mcp._cli import add_arguments
    except ImportError as exc:
        _unavailable(parser, "mcp", exc)
        return
    add_arguments(parser)


def _core_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ._commands import register_enrich, register_result, register_run, register_status

    for register in (register_run, register_result, register_status, register_enrich):
        register(sub)


_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _core_commands,
    _mcp_command,
    _emulator_command,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for `parallel-tools` with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="parallel-tools",
        description="Cited web research with Parallel's Task API: run tasks, enrich files, "
        "serve MCP, emulate the API offline.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `parallel-tools` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_OK
    try:
        code: int = handler(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
