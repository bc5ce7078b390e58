"""``parallel-tools emulator``: serve the Task API emulator from the command line.

Imported while the whole CLI's arguments are parsed, so it imports nothing heavy at module
level: starlette and uvicorn load only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from ._faults import ENDPOINTS, Fault

__all__ = ["add_arguments", "run"]

EXIT_OK: Final = 0
EXIT_BAD_INPUT: Final = 2

_FAULT_HELP = (
    "inject a fault, ENDPOINT:ACTION[:OPTION]... (repeatable). Actions: an HTTP status, "
    "drop_before, drop_mid, fail_run[=MESSAGE], hold_408, delay=SECONDS. Options: times=N "
    "(0 = forever), retry_after=S, retry_after_ms=MS, message=TEXT, match=ID, after_accept. "
    "Endpoints: * or " + ", ".join(ENDPOINTS) + ". Example: create:429:times=2:retry_after=1"
)


def _fault(text: str) -> Fault:
    try:
        return Fault.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser`` and make :func:`run` its handler."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s, loopback only)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8787,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept only this x-api-key (repeatable; default: any non-empty key)",
    )
    parser.add_argument(
        "--time-scale",
        type=_non_negative,
        default=0.001,
        metavar="FACTOR",
        help="multiply the processors' real latencies by this; 0.001 makes a "
        "lite run take 10-60 ms, 0 ends runs at once (default: %(default)s)",
    )
    parser.add_argument(
        "--max-result-hold",
        type=_non_negative,
        default=None,
        metavar="SECONDS",
        help="hold /result requests at most this long, whatever their timeout",
    )
    parser.add_argument(
        "--fixtures",
        action="append",
        default=[],
        metavar="FILE.json",
        help="answers to return for given inputs (repeatable); a JSON list of "
        '{"input": ..., "output": ..., "basis": [...]}',
    )
    parser.add_argument(
        "--no-builtin-fixtures",
        action="store_true",
        help="do not answer the quickstart's United Nations examples with the built-in answers",
    )
    parser.add_argument(
        "--webhook-secret",
        default="whsec_test",
        metavar="SECRET",
        help="secret that signs webhook deliveries (default: %(default)s)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault,
        dest="faults",
        metavar="SPEC",
        help=_FAULT_HELP,
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for synthetic answers and run durations (default: %(default)s)",
    )
    parser.add_argument(
        "--no-control-api",
        action="store_true",
        help="do not serve /_emulator/... (faults, fixtures, counts, reset)",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit code."""
    from .._exceptions import MissingExtraError, require

    try:
        require("The emulator", "emulator", "starlette", "uvicorn")
    except MissingExtraError as exc:
        sys.stderr.write(f"parallel-tools emulator: {exc}\n")
        return EXIT_BAD_INPUT
    from ._emulator import Emulator
    from ._server import EmulatorServer

    try:
        emulator = Emulator(
            time_scale=args.time_scale,
            api_keys=args.api_keys,
            webhook_secret=args.webhook_secret,
            max_result_hold=args.max_result_hold,
            seed=args.seed,
            builtin_fixtures=not args.no_builtin_fixtures,
            control_api=not args.no_control_api,
        )
        for path in args.fixtures:
            emulator.load_fixtures(path)
    except ValueError as exc:
        sys.stderr.write(f"parallel-tools emulator: {exc}\n")
        return EXIT_BAD_INPUT
    for fault in args.faults:
        emulator.add_fault(fault)
    try:
        server = EmulatorServer(emulator, host=args.host, port=args.port, log_level=args.log_level)
    except OSError as exc:
        sys.stderr.write(
            f"parallel-tools emulator: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc}\n"
        )
        return EXIT_BAD_INPUT
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.no_control_api:
        sys.stderr.write(
            f"Warning: listening on {args.host}; anyone who can reach it can use the control "
            "API (/_emulator/...) without a key. Pass --no-control-api to turn it off.\n"
        )
    key_hint = "<one of the --api-key values>" if args.api_keys else "any-non-empty-key"
    # The first line is the base URL alone, so scripts (and tests) can read it.
    sys.stdout.write(f"{server.base_url}\n")
    sys.stdout.write(
        f"Parallel Task API emulator listening on {server.base_url} (answers are emulated).\n"
        f"  export PARALLEL_BASE_URL={server.base_url}\n"
        f"  export PARALLEL_API_KEY={key_hint}\n"
        "Press Ctrl-C to stop.\n"
    )
    sys.stdout.flush()
    server.serve_forever()
    return EXIT_OK
