"""The `run`, `result`, `status` and `enrich` commands of `parallel-tools`.

Thin by design: each parses its arguments into a core call and prints what comes back. The
commands that talk to the API take `--emulator` to use the built-in emulator instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

from ._client import TaskClient
from ._config import PROCESSORS
from ._connect import connect
from ._exceptions import (
    AuthenticationError,
    ConfigurationError,
    InvalidInputError,
    MissingExtraError,
    ParallelError,
    TaskTimeoutError,
)
from ._progress import Progress
from ._results import TaskResult
from ._tasks import Task

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_AUTH, EXIT_API, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5


class UsageError(Exception):
    """Bad command-line input; reported with exit code 2."""


# --- Shared plumbing ------------------------------------------------------------------------------


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of every command that talks to the API."""
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="use the built-in emulator (offline; answers are emulated, not researched)",
    )
    parser.add_argument("--base-url", help="the API's URL (default: PARALLEL_BASE_URL or Parallel)")


def add_output_arguments(parser: argparse.ArgumentParser, *, columns: bool) -> None:
    """`--output` / `--schema` / `--model`, the ways to say what to find out."""
    shape = parser.add_mutually_exclusive_group()
    if columns:
        shape.add_argument(
            "--output",
            action="append",
            metavar='"COLUMN: DESCRIPTION"',
            help="an output column and what to put in it (repeat for more columns)",
        )
    else:
        shape.add_argument("--output", metavar="DESCRIPTION", help="what to find out, in words")
    shape.add_argument("--schema", metavar="FILE", help="a JSON schema file for the output")
    shape.add_argument(
        "--model",
        metavar="MODULE:NAME",
        help="a pydantic output model, or a Task (input and output), to import",
    )
    parser.add_argument(
        "--processor",
        choices=sorted(PROCESSORS),
        metavar="PROCESSOR",
        help="processor tier (default: base, or the task's); sets the price",
    )


@contextlib.contextmanager
def open_client(args: argparse.Namespace) -> Iterator[TaskClient]:
    """A client for the real API, or for an in-process emulator with `--emulator`."""
    use_emulator = bool(getattr(args, "emulator", False))
    options = {"base_url": args.base_url} if getattr(args, "base_url", None) else {}
    with connect(
        emulator=use_emulator, notice=sys.stderr if use_emulator else None, **options
    ) as client:
        yield client


def exit_code(error: BaseException) -> int:
    """The documented exit code for an error."""
    if isinstance(error, UsageError | InvalidInputError | MissingExtraError):
        return EXIT_BAD_INPUT
    if isinstance(error, AuthenticationError | ConfigurationError):
        return EXIT_AUTH
    if isinstance(error, TaskTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(error, ParallelError):
        return EXIT_API
    return EXIT_ERROR


def guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn expected errors into a one-line message and the documented exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (UsageError, ParallelError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            if isinstance(exc, TaskTimeoutError):
                print(_collect_later(exc.run_id, args), file=sys.stderr)
            return exit_code(exc)

    return run


def load_output(args: argparse.Namespace) -> tuple[Any, Task[Any, Any] | None]:
    """The output shape (or Task) from `--output`, `--schema` or `--model`."""
    if args.schema:
        try:
            return json.loads(Path(args.schema).read_text()), None
        except (OSError, ValueError) as exc:
            raise UsageError(f"Cannot read the schema {args.schema}: {exc}") from None
    if args.model:
        value = import_object(args.model)
        if isinstance(value, Task):
            return None, value
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value, None
        raise UsageError(f"{args.model} is neither a pydantic model class nor a Task.")
    output = args.output
    if isinstance(output, list):
        return columns_schema(output), None
    return output, None


def columns_schema(specs: list[str]) -> dict[str, Any]:
    """A JSON schema with one string property per `"column: description"`."""
    properties: dict[str, Any] = {}
    for spec in specs:
        name, sep, description = spec.partition(":")
        name = name.strip()
        if not sep or not name or not description.strip():
            raise UsageError(f'--output takes "COLUMN: DESCRIPTION", got {spec!r}.')
        properties[name] = {"type": "string", "description": description.strip()}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def import_object(path: str) -> Any:
    """`module:attribute`, imported with the current directory on the path."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"Expected MODULE:NAME, got {path!r}.")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
        value = module
        for part in attribute.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"Cannot import {path}: {exc}") from None
    return value


class StatusLine:
    """One self-overwriting line on a terminal's stderr; silent when stderr is not a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()

    def show(self, text: str) -> None:
        if self.live:
            width = 120
            self.stream.write("\r\x1b[2K" + text[:width])
            self.stream.flush()

    def clear(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def print_result(result: TaskResult[Any], as_json: bool) -> None:
    """The answer with numbered citations, or the whole result as JSON."""
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        print(result.to_markdown())


# --- run, result, status --------------------------------------------------------------------------


def register_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`parallel-tools run`."""
    parser = sub.add_parser(
        "run",
        help="run one task and print the cited answer",
        description="Run one task: create it, wait (showing progress on a terminal) and print "
        "the answer with numbered citations.",
    )
    parser.add_argument("input", metavar="INPUT", help="the question, or a JSON object")
    add_output_arguments(parser, columns=False)
    parser.add_argument("--input-json", action="store_true", help="parse INPUT as JSON")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument("--no-wait", action="store_true", help="print the run id and return")
    parser.add_argument("--timeout", type=float, help="seconds to wait before giving up")
    add_api_arguments(parser)
    parser.set_defaults(handler=guarded(_run))


def _run(args: argparse.Namespace) -> int:
    value: Any = args.input
    if args.input_json:
        try:
            value = json.loads(args.input)
        except ValueError as exc:
            raise UsageError(f"INPUT is not valid JSON: {exc}") from None
    output, task = load_output(args)
    with open_client(args) as client:
        if task is not None:
            processor = args.processor or task.processor
            run = client.create_run(
                task.prepare_input(value), task_spec=task.spec, processor=processor
            )
            model = task.output_model
        else:
            run = client.create_run(value, output=output, processor=args.processor or "base")
            is_model = isinstance(output, type) and issubclass(output, BaseModel)
            model = output if is_model else None
        if args.no_wait:
            print(run.run_id)
            print(_collect_later(run.run_id, args), file=sys.stderr)
            return EXIT_OK
        print(f"Run {run.run_id} ({run.processor}) started.", file=sys.stderr)
        result = _wait(client, run.run_id, args.timeout)
        print_result(TaskResult.from_run_result(result, model), args.json)
    return EXIT_OK


def _wait(client: TaskClient, run_id: str, timeout: float | None) -> Any:
    line = StatusLine()
    try:
        if line.live:

            def show(progress: Progress) -> None:
                line.show(progress.describe())

            return client.wait_with_progress(run_id, show, timeout=timeout, heartbeat=1.0)
        return client.wait(run_id, timeout=timeout)
    finally:
        line.clear()


def register_result(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`parallel-tools result`."""
    parser = sub.add_parser(
        "result",
        help="print a run's result (optionally waiting for it)",
        description="Print a run's cited answer. Without --wait, a run still going exits 5.",
    )
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("--wait", action="store_true", help="wait until the run finishes")
    parser.add_argument("--timeout", type=float, help="seconds to wait with --wait")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    add_api_arguments(parser)
    parser.set_defaults(handler=guarded(_result))


def _result(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        if args.wait:
            result = _wait(client, args.run_id, args.timeout)
        else:
            result = client.result(args.run_id)
            if result is None:
                print(
                    f"Run {args.run_id} is still running; try again later or add --wait.",
                    file=sys.stderr,
                )
                return EXIT_TIMEOUT
        print_result(TaskResult.from_run_result(result), args.json)
    return EXIT_OK


def register_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`parallel-tools status`."""
    parser = sub.add_parser("status", help="print a run's status")
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("--json", action="store_true", help="print the run as JSON")
    add_api_arguments(parser)
    parser.set_defaults(handler=guarded(_status))


def _status(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        run = client.get_run(args.run_id)
    if args.json:
        print(json.dumps(run.model_dump(mode="json"), indent=2))
        return EXIT_OK
    print(f"{run.run_id}: {run.status} (processor {run.processor})")
    if run.error:
        print(f"error: {run.error.message}")
    for warning in run.warnings or []:
        print(f"warning: {warning.message}")
    return EXIT_OK


# --- enrich --------------------------------------------------------------------------------------


def register_enrich(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`parallel-tools enrich`."""
    parser = sub.add_parser(
        "enrich",
        help="enrich a CSV or JSONL file, one run per row, resumable",
        description="Enrich every row of a CSV or JSONL file through one task group. A journal "
        "beside the output (OUT.journal) makes it resumable: run the same command again after "
        "an interruption and no row is paid for twice. Rows that cannot run are listed in "
        "OUT-stem.errors.jsonl. Without --output/--schema/--model the processor chooses the "
        "fields (auto schema) and the answer lands, as JSON, in one 'output' column.",
        epilog='example: parallel-tools enrich companies.csv -o out.csv --output "founded: the '
        'founding year" --output "ceo: the current CEO"',
    )
    parser.add_argument("input", metavar="INPUT", help="a .csv (with a header) or .jsonl file")
    parser.add_argument("-o", "--out", required=True, metavar="OUT", help=".csv or .jsonl")
    add_output_arguments(parser, columns=True)
    parser.add_argument("--dry-run", action="store_true", help="count runs and cost, send nothing")
    parser.add_argument("--concurrency", type=int, default=16, help="results fetched at once")
    add_api_arguments(parser)
    parser.set_defaults(handler=guarded(_enrich))


def _enrich(args: argparse.Namespace) -> int:
    from .enrich import Enrichment, EnrichProgress

    output, task = load_output(args)
    job = Enrichment(
        args.input,
        args.out,
        task=task,
        output=output,
        processor=args.processor,
        concurrency=max(1, args.concurrency),
    )
    if args.dry_run:
        plan = job.estimate()
        print(
            f"{plan.runs} run(s) on {job.processor} for {plan.total} row(s) "
            f"({plan.invalid} invalid): ${plan.list_price:,.2f} at list price. Nothing was sent."
        )
        return EXIT_OK
    line = StatusLine()

    def show(p: EnrichProgress) -> None:
        eta = f", ETA {p.eta:.0f} s" if p.eta else ""
        bar = _bar((p.done + p.invalid) / p.total if p.total else 1.0)
        line.show(
            f"{bar} {p.done}/{p.total - p.invalid} done, {p.failed} failed, {p.invalid} invalid, "
            f"{p.rate:.1f}/s{eta}"
        )

    with open_client(args) as client:
        try:
            summary = job.run(client, on_progress=show)
        finally:
            line.clear()
    resumed = " (resumed)" if summary.resumed else ""
    print(
        f"Wrote {summary.total} row(s) to {summary.output_path}{resumed}: {summary.completed} "
        f"completed, {summary.failed} failed, {summary.invalid} invalid. Group "
        f"{summary.group_id}; {summary.runs} run(s), ${summary.list_price:,.2f} at list price.",
        file=sys.stderr,
    )
    if summary.errors_path:
        print(f"Rows with errors are listed in {summary.errors_path}.", file=sys.stderr)
    return EXIT_OK


def _collect_later(run_id: str | None, args: argparse.Namespace) -> str:
    if getattr(args, "emulator", False):
        return (
            "(With --emulator the run lived in this command's own emulator, which is gone now: "
            "nothing can collect it. Use the real API to pick runs up later.)"
        )
    return f"The run goes on; collect it later with: parallel-tools result {run_id} --wait"


def _bar(fraction: float, width: int = 20) -> str:
    filled = int(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"
