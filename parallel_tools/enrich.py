"""Enrich a CSV or JSONL file through one task group, resumable after any crash.

Each row becomes one run of a task group; each result becomes columns (CSV) or fields (JSONL) of
the output, which keeps the input's order. A journal beside the output (`OUT.journal`) records
every step, so killing the process at any moment (SIGKILL included) and running the same
command again picks up exactly where it stopped:

* **No row is submitted twice.** A batch is journaled as *intended* before it is sent and as
  *submitted* after the server accepted it. A crash between the two, or an ambiguous failure of
  the request, leaves an intent without a record; every run carries its row number in its
  metadata, so on resume the group's run list is read and the rows found there are not sent
  again.
* **No finished result is fetched twice.** Each result is appended to the journal (with its full
  basis) as it arrives; a resumed job skips the rows it holds.
* **No row is lost.** Bad rows (missing columns, malformed JSON, inputs over the size limit) are
  reported with their row numbers in `OUT.errors.jsonl` and still appear in the output, marked
  `invalid`; failed runs appear marked `failed`.

Memory stays flat as the file grows: rows are streamed, results go to the journal, and the
state kept per row is a couple of bits plus a file offset.
"""

from __future__ import annotations

import array
import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

from ._base import RunOutcome
from ._client import TaskClient
from ._config import DEFAULT_PROCESSOR, MAX_RUNS_PER_GROUP_REQUEST, get_processor
from ._exceptions import (
    APIError,
    BadRequestError,
    InvalidInputError,
    OutputValidationError,
    ParallelError,
    RunMayExistError,
    TaskFailedError,
    UnprocessableEntityError,
)
from ._models import TaskRun
from ._schema import OutputSpec, check_request_size, task_spec
from ._tasks import Task

__all__ = ["EnrichProgress", "EnrichSummary", "Enrichment", "JournalMismatchError", "enrich"]

logger = logging.getLogger("parallel_tools")

JOURNAL_VERSION = 1
ROW_KEY = "pt_row"
# Test hook: `PARALLEL_TOOLS_CRASH_AT=point` (or `point:n`, the n-th time) kills the process
# with SIGKILL at that point, so tests can prove the journal survives a crash anywhere.
_CRASH_ENV = "PARALLEL_TOOLS_CRASH_AT"
_FSYNC_INTERVAL = 1.0
# A cell may hold a whole document; the size rules (25,000 characters per run) judge it per
# row, instead of the csv module's 128 KiB limit failing the whole file.
_CSV_FIELD_LIMIT = 1 << 26


class JournalMismatchError(InvalidInputError):
    """The journal beside the output belongs to a different job (input, spec or processor)."""


@dataclass(frozen=True, slots=True)
class EnrichProgress:
    """Where an enrichment stands.

    Attributes:
        total: Rows in the input.
        submitted: Rows sent (in this or an earlier, interrupted pass).
        done: Rows with a result (completed or failed).
        failed: Rows whose run failed.
        invalid: Rows that could not be sent (bad input).
        elapsed: Seconds since this pass started.
        rate: Results per second in this pass.
    """

    total: int
    submitted: int
    done: int
    failed: int
    invalid: int
    elapsed: float
    rate: float

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, when it can be estimated."""
        left = self.total - self.invalid - self.done
        if left <= 0:
            return 0.0
        return left / self.rate if self.rate > 0 else None


@dataclass(frozen=True, slots=True)
class EnrichSummary:
    """The outcome of an enrichment.

    Attributes:
        total: Rows in the input.
        completed: Rows with a result.
        failed: Rows whose run failed (listed in the errors file).
        invalid: Rows that could not be sent (listed in the errors file).
        output_path: The output file, complete and in input order.
        errors_path: The errors file, or None when there were no errors.
        group_id: The task group (None for a dry run).
        resumed: Whether an earlier, interrupted pass was picked up.
        runs: Runs to create (dry run) or created in all passes.
        list_price: Runs times the processor's list price, in US dollars.
    """

    total: int
    completed: int
    failed: int
    invalid: int
    output_path: Path
    errors_path: Path | None
    group_id: str | None
    resumed: bool
    runs: int
    list_price: float


@dataclass(slots=True)
class _Row:
    index: int
    line: int
    raw: Any
    input: Any = None
    error: str | None = None


@dataclass(slots=True)
class _State:
    """What the journal says, rebuilt by scanning it."""

    fingerprint: str | None = None
    group_id: str | None = None
    submitted: bytearray = field(default_factory=bytearray)
    offsets: array.array[int] = field(default_factory=lambda: array.array("q"))
    # batch -> (first row, span of rows, rows sent, when it was sent)
    intents: dict[int, tuple[int, int, int, float]] = field(default_factory=dict)
    failed: int = 0
    complete: bool = False

    def done(self, row: int) -> bool:
        return self.offsets[row] >= 0


class _Journal:
    """An append-only JSON-lines file; every record is written through to the OS at once, so
    a killed process loses nothing it wrote (fsync, for power loss, runs at most once a second)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: io.BufferedWriter | None = None
        self._synced = 0.0

    def scan(self, rows: int) -> _State:
        state = _State(submitted=bytearray(rows), offsets=array.array("q", [-1]) * rows)
        if not self.path.exists():
            return state
        good = 0
        with self.path.open("rb") as handle:
            offset = 0
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    break  # a torn last line from a crash mid-write: dropped below
                if not line.endswith(b"\n"):
                    break
                self._apply(state, record, offset, rows)
                offset += len(line)
                good = offset
        if good < self.path.stat().st_size:
            with self.path.open("r+b") as handle:
                handle.truncate(good)
        return state

    @staticmethod
    def _apply(state: _State, record: dict[str, Any], offset: int, rows: int) -> None:
        kind = record.get("t")
        if kind == "job":
            state.fingerprint = record["fingerprint"]
            state.group_id = record.get("group_id")
        elif kind == "intent":
            state.intents[record["batch"]] = (
                record["first"],
                record["rows"],
                record.get("count", record["rows"]),
                record.get("at", 0.0),
            )
        elif kind == "submitted":
            state.intents.pop(record["batch"], None)
            for row in record["rows"]:
                if 0 <= row < rows:
                    state.submitted[row] = 1
        elif kind == "result":
            row = record["row"]
            if 0 <= row < rows and state.offsets[row] < 0:
                state.offsets[row] = offset
                state.submitted[row] = 1
                state.failed += record["status"] != "completed"
        elif kind == "complete":
            state.complete = True

    def append(self, record: dict[str, Any], *, sync: bool = False) -> int:
        """Append a record; `sync` forces it to disk now (for records that must survive even
        a power loss, such as the intent to send a batch)."""
        if self._file is None:
            self._file = self.path.open("ab", buffering=0)  # type: ignore[assignment]
        assert self._file is not None
        offset = self._file.tell()
        self._file.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        now = time.monotonic()
        if sync or now - self._synced >= _FSYNC_INTERVAL:
            os.fsync(self._file.fileno())
            self._synced = now
        return offset

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the journal for the whole job: two processes working on
        the same output would each send every row."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks; documented
            yield
            return
        with self.path.open("ab") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise InvalidInputError(
                    f"Another process is already enriching into {self.path.name[:-8]} (its "
                    "journal is locked). Wait for it to finish, or write to another output file."
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def read(self, offset: int) -> dict[str, Any]:
        with self.path.open("rb") as handle:
            handle.seek(offset)
            record: dict[str, Any] = json.loads(handle.readline())
            return record

    def close(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


class Enrichment:
    """One enrichment job: an input file, an output file, a task, a processor.

    Args:
        input_path: A `.csv` (header row required) or `.jsonl` file.
        output_path: A `.csv` or `.jsonl` file; the journal and errors file go beside it.
        task: A `Task` (its input model validates rows; its output shapes the result), or
            None with `output` for plain rows.
        output: The output shape when there is no task: a pydantic model, a JSON schema,
            a text description, or None for auto.
        processor: The processor (default: the task's, else `base`).
        concurrency: How many results to fetch at once.
        settle_margin: After a batch was sent with an unknown outcome (a crash, a dropped
            connection), how long beyond the client's request timeout to wait before trusting
            that runs not listed in the group were never created.
    """

    def __init__(
        self,
        input_path: str | os.PathLike[str],
        output_path: str | os.PathLike[str],
        *,
        task: Task[Any, Any] | None = None,
        output: OutputSpec = None,
        processor: str | None = None,
        concurrency: int = 16,
        settle_margin: float = 30.0,
    ) -> None:
        self.input_path = Path(input_path)
        self.output_path = Path(output_path)
        for path in (self.input_path, self.output_path):
            if path.suffix.lower() not in (".csv", ".jsonl"):
                raise InvalidInputError(f"{path} must be a .csv or .jsonl file.")
        self.journal_path = self.output_path.with_name(self.output_path.name + ".journal")
        self.errors_path = self.output_path.with_name(self.output_path.stem + ".errors.jsonl")
        written = [
            self.output_path,
            self.journal_path,
            self.errors_path,
            self.output_path.with_name(self.output_path.name + ".partial"),
            self.errors_path.with_name(self.errors_path.name + ".partial"),
        ]
        if self.input_path.resolve() in {path.resolve() for path in written}:
            raise InvalidInputError(
                f"{self.input_path} would be overwritten: the output, its journal and its errors "
                "file must all differ from the input. Choose another output name."
            )
        if not self.input_path.is_file():
            raise InvalidInputError(f"Input file {self.input_path} does not exist.")
        if task is not None and output is not None:
            raise TypeError("Pass either a task or an output, not both.")
        self.task = task
        self.spec = task.spec if task is not None else task_spec(output=output)
        shape = task.output if task is not None else output
        self.output_model = (
            shape if isinstance(shape, type) and issubclass(shape, BaseModel) else None
        )
        self.fields = _output_fields(self.spec)
        self.processor = processor or (task.processor if task else DEFAULT_PROCESSOR)
        get_processor(self.processor)
        self.concurrency = concurrency
        self.settle_margin = settle_margin
        self._journal = _Journal(self.journal_path)
        self._columns: list[str] = []
        self._next_batch = 0
        self._settle = 60.0 + settle_margin  # replaced by the client's own timeout in run()

    # --- Reading rows -----------------------------------------------------------------------

    def rows(self) -> Iterator[_Row]:
        """Every row of the input, validated, in order."""
        rows = self._csv_rows() if self.input_path.suffix.lower() == ".csv" else self._jsonl_rows()
        try:
            yield from rows
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"{self.input_path} is not UTF-8 text (byte {exc.start} cannot be decoded). Save "
                "it as UTF-8 and run again."
            ) from None
        except csv.Error as exc:
            raise InvalidInputError(f"{self.input_path} is not readable CSV: {exc}.") from None

    def _csv_rows(self) -> Iterator[_Row]:
        limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
        try:
            with self.input_path.open(newline="", encoding="utf-8-sig") as handle:
                yield from self._csv_records(csv.DictReader(handle))
        finally:
            csv.field_size_limit(limit)

    def _csv_records(self, reader: csv.DictReader[str]) -> Iterator[_Row]:
        self._columns = list(reader.fieldnames or [])
        if not self._columns:
            raise InvalidInputError(f"{self.input_path} has no header row.")
        repeated = sorted({c for c in self._columns if self._columns.count(c) > 1})
        if repeated:
            raise InvalidInputError(
                f"{self.input_path} repeats column name(s) {', '.join(repeated)}; a row could "
                "not keep both values. Rename them."
            )
        if self.output_path.suffix.lower() == ".csv":
            clash = sorted(set(self._columns) & set(self._output_columns()))
            if clash:
                raise InvalidInputError(
                    f"Input column(s) {', '.join(clash)} have the names of output columns and "
                    "would be overwritten. Rename the input columns or the output fields."
                )
        for index, record in enumerate(reader):
            row = _Row(index, reader.line_num, record)
            if None in record:
                row.error = "the row has more values than the header has columns"
            else:
                cells = {k: v for k, v in record.items() if v not in (None, "")}
                self._check(row, cells)
            yield row

    def _jsonl_rows(self) -> Iterator[_Row]:
        with self.input_path.open(encoding="utf-8-sig") as handle:
            index = 0
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                row = _Row(index, number, line.rstrip("\n"))
                index += 1
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    row.error = f"malformed JSON: {exc}"
                else:
                    row.raw = value
                    if isinstance(value, dict | str):
                        self._check(row, value)
                    else:
                        row.error = "each line must be a JSON object or string"
                yield row

    def _check(self, row: _Row, value: Any) -> None:
        try:
            if self.task is not None:
                value = self.task.prepare_input(value)
            elif not value:
                raise InvalidInputError("the row is empty")
            problem = check_request_size(self.spec, value)
            if problem:
                raise InvalidInputError(problem)
        except InvalidInputError as exc:
            row.error = exc.message
            return
        row.input = value

    def _fingerprint(self) -> tuple[str, int]:
        digest = hashlib.sha256()
        with self.input_path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        meta = {"v": JOURNAL_VERSION, "spec": self.spec, "processor": self.processor}
        digest.update(json.dumps(meta, sort_keys=True).encode())
        count = sum(1 for _ in self.rows())
        return digest.hexdigest(), count

    # --- Running ----------------------------------------------------------------------------

    def estimate(self) -> EnrichSummary:
        """Count the runs and their list price without sending anything."""
        total = invalid = 0
        for row in self.rows():
            total += 1
            invalid += row.error is not None
        runs = total - invalid
        return EnrichSummary(
            total=total,
            completed=0,
            failed=0,
            invalid=invalid,
            output_path=self.output_path,
            errors_path=None,
            group_id=None,
            resumed=False,
            runs=runs,
            list_price=runs * get_processor(self.processor).price_per_run,
        )

    def run(
        self,
        client: TaskClient,
        *,
        on_progress: Callable[[EnrichProgress], object] | None = None,
    ) -> EnrichSummary:
        """Submit every row, collect every result, and write the output in input order.

        Safe to call again after an interruption: it resumes from the journal.

        Raises:
            JournalMismatchError: the journal is from a different job.
            ParallelError: the API failed in a way retrying cannot fix (auth, payment, ...).
        """
        with self._journal.locked():
            return self._run(client, on_progress)

    def _run(
        self, client: TaskClient, on_progress: Callable[[EnrichProgress], object] | None
    ) -> EnrichSummary:
        fingerprint, total = self._fingerprint()
        state = self._journal.scan(total)
        resumed = state.fingerprint is not None
        if resumed and state.fingerprint != fingerprint:
            raise JournalMismatchError(
                f"{self.journal_path} belongs to a different job: the input, schema or "
                "processor changed since it was written. To keep the results it holds, restore "
                "the original input or write this job to another output file. Deleting the "
                "journal starts over and pays for every row again."
            )
        read_timeout = client.timeout.read if client.timeout.read is not None else 60.0
        self._settle = read_timeout + self.settle_margin
        self._next_batch = _next_batch_number(self.journal_path)
        started = time.monotonic()
        counters = {"done": 0, "failed": state.failed, "invalid": 0, "submitted": 0}
        counters["done"] = sum(1 for row in range(total) if state.done(row))

        def report() -> None:
            if on_progress is None:
                return
            elapsed = time.monotonic() - started
            fresh = counters["done"] - already
            on_progress(
                EnrichProgress(
                    total=total,
                    submitted=counters["submitted"],
                    done=counters["done"],
                    failed=counters["failed"],
                    invalid=counters["invalid"],
                    elapsed=elapsed,
                    rate=fresh / elapsed if elapsed > 0 else 0.0,
                )
            )

        already = counters["done"]
        try:
            if not state.complete:
                if state.group_id is None:
                    group = client.create_group(metadata={"source": self.input_path.name[:500]})
                    _crash_point("group_created")
                    state.group_id = group.taskgroup_id
                    self._journal.append(
                        {
                            "t": "job",
                            "v": JOURNAL_VERSION,
                            "fingerprint": fingerprint,
                            "group_id": state.group_id,
                            "input": str(self.input_path),
                            "processor": self.processor,
                        }
                    )
                self._reconcile(client, state)
                self._submit(client, state, counters, report)
                self._collect(client, state, counters, report)
            completed, failed, invalid = self._write_output(state)
            if not state.complete:
                self._journal.append({"t": "complete"})
        finally:
            self._journal.close()
        report()
        submitted = sum(state.submitted)
        return EnrichSummary(
            total=total,
            completed=completed,
            failed=failed,
            invalid=invalid,
            output_path=self.output_path,
            errors_path=self.errors_path if failed or invalid else None,
            group_id=state.group_id,
            resumed=resumed,
            runs=submitted,
            list_price=submitted * get_processor(self.processor).price_per_run,
        )

    def _reconcile(self, client: TaskClient, state: _State) -> None:
        """Settle batches that were sent (or about to be) without a record of the answer.

        Every run carries its row in metadata, so the group's run list says which rows of
        such a batch reached the server; those are not sent again. A batch whose runs are not
        all listed may still be in flight on the server, so the listing is trusted only once
        the request could no longer be running (its timeout plus a margin after it was sent).
        """
        if not state.intents:
            return
        found = self._listed(client, state)
        unsettled = [
            at + self._settle
            for batch, (_, _, count, at) in state.intents.items()
            if len(found[batch]) < count
        ]
        wait = max(unsettled, default=0.0) - time.time()
        if wait > 0:
            logger.info("waiting %.0f s for an unanswered batch to settle before re-listing", wait)
            time.sleep(wait)
            found = self._listed(client, state)
        for batch, pairs in found.items():
            self._journal.append(
                {
                    "t": "submitted",
                    "batch": batch,
                    "rows": [row for row, _ in pairs],
                    "run_ids": [run_id for _, run_id in pairs],
                    "reconciled": True,
                }
            )
            for row, _ in pairs:
                state.submitted[row] = 1
            state.intents.pop(batch, None)

    @staticmethod
    def _listed(client: TaskClient, state: _State) -> dict[int, list[tuple[int, str]]]:
        assert state.group_id is not None
        pending = dict(state.intents)
        found: dict[int, list[tuple[int, str]]] = {batch: [] for batch in pending}
        for event in client.group_runs(state.group_id):
            row = _row_of(event.run)
            if row is None:
                continue
            for batch, (first, span, _, _) in pending.items():
                if first <= row < first + span:
                    found[batch].append((row, event.run.run_id))
        return found

    def _submit(
        self,
        client: TaskClient,
        state: _State,
        counters: dict[str, int],
        report: Callable[[], None],
    ) -> None:
        assert state.group_id is not None
        batch: list[_Row] = []
        for row in self.rows():
            if row.error is not None:
                counters["invalid"] += 1
                continue
            if state.submitted[row.index] or state.done(row.index):
                counters["submitted"] += 1
                continue
            batch.append(row)
            if len(batch) == MAX_RUNS_PER_GROUP_REQUEST:
                self._send_batch(client, state, batch)
                counters["submitted"] += len(batch)
                batch = []
                report()
        if batch:
            self._send_batch(client, state, batch)
            counters["submitted"] += len(batch)
            report()

    def _send_batch(self, client: TaskClient, state: _State, rows: list[_Row]) -> None:
        """Send rows as one request, journaled before (intent) and after (submitted).

        After an ambiguous failure the group is re-listed (`_reconcile`) and only rows that
        did not reach the server are sent again. A batch the API refuses outright (400/422:
        nothing was created) is split in halves until the offending rows are isolated; they
        are recorded as rejected and the rest is sent.
        """
        assert state.group_id is not None
        for _attempt in range(3):
            rows = [row for row in rows if not state.submitted[row.index]]
            if not rows:
                return
            number = self._next_batch
            self._next_batch += 1
            first = rows[0].index
            span = rows[-1].index - first + 1
            sent_at = time.time()
            intent = {"t": "intent", "batch": number, "first": first, "rows": span}
            intent |= {"count": len(rows), "at": sent_at}
            self._journal.append(intent, sync=True)
            state.intents[number] = (first, span, len(rows), sent_at)
            runs = [{"input": row.input, "metadata": {ROW_KEY: str(row.index)}} for row in rows]
            try:
                response = client.add_runs(
                    state.group_id, runs, default_task_spec=self.spec, processor=self.processor
                )
            except RunMayExistError:
                self._reconcile(client, state)  # the server may hold some: look before resending
                continue
            except (UnprocessableEntityError, BadRequestError) as exc:
                # Refused as a whole, so nothing was created: close the intent, then narrow down.
                self._journal.append({"t": "submitted", "batch": number, "rows": [], "run_ids": []})
                state.intents.pop(number, None)
                if len(rows) == 1:
                    self._reject(state, rows[0], exc)
                    return
                half = len(rows) // 2
                self._send_batch(client, state, rows[:half])
                self._send_batch(client, state, rows[half:])
                return
            _crash_point("batch_accepted")
            self._journal.append(
                {
                    "t": "submitted",
                    "batch": number,
                    "rows": [row.index for row in rows],
                    "run_ids": response.run_ids,
                }
            )
            for row in rows:
                state.submitted[row.index] = 1
            state.intents.pop(number, None)
            return
        raise RunMayExistError(
            f"Sending rows {rows[0].line}-{rows[-1].line} to group {state.group_id} kept failing "
            "in a way that leaves open whether Parallel accepted them. Run the same command "
            "again later: it checks which rows reached the server before sending any again."
        )

    def _reject(self, state: _State, row: _Row, exc: ParallelError) -> None:
        record = {"t": "result", "row": row.index, "run_id": None, "status": "rejected"}
        record["error"] = f"Parallel refused this row: {exc.message}"
        state.offsets[row.index] = self._journal.append(record)
        state.submitted[row.index] = 1

    def _collect(
        self,
        client: TaskClient,
        state: _State,
        counters: dict[str, int],
        report: Callable[[], None],
    ) -> None:
        assert state.group_id is not None
        claimed = bytearray(state.submitted)  # 2: recorded or being fetched in this pass

        def first_time(run: TaskRun) -> bool:
            row = _row_of(run)
            if row is None or row >= len(claimed) or state.done(row) or claimed[row] == 2:
                return False
            claimed[row] = 2
            return True

        missing: list[int] = []
        for _pass in range(3):
            outcomes = client.group_results(
                state.group_id,
                output=self.output_model,
                concurrency=self.concurrency,
                dedupe=first_time,
            )
            for outcome in outcomes:
                self._record(state, outcome, counters)
                report()
            missing = [r for r in range(len(claimed)) if state.submitted[r] and not state.done(r)]
            if not missing:
                return
            for row in missing:
                claimed[row] = 1
        raise APIError(
            f"{len(missing)} submitted row(s) still have no result (first: row {missing[0] + 1}): "
            "fetching them failed or they are not finished. Their runs are safe; run the same "
            "command again later to collect them without paying again."
        )

    def _record(self, state: _State, outcome: RunOutcome[Any], counters: dict[str, int]) -> None:
        row = _row_of(outcome.run)
        if row is None or state.done(row):
            return
        error = outcome.error
        if outcome.result is None and not isinstance(
            error, TaskFailedError | OutputValidationError
        ):
            # Fetching failed (not the run): nothing is recorded, so the row is fetched again.
            logger.info("row %d: fetching run %s failed: %s", row + 1, outcome.run_id, error)
            return
        record: dict[str, Any] = {
            "t": "result",
            "row": row,
            "run_id": outcome.run_id,
            "status": "completed" if outcome.result is not None else outcome.run.status,
        }
        if isinstance(error, OutputValidationError):
            record.update(
                status="invalid_output",
                error=error.message,
                output=error.result.output.model_dump(mode="json"),
            )
        elif error is not None:
            record["error"] = error.message
        elif outcome.result is not None:
            record["output"] = outcome.result.output.model_dump(mode="json")
        state.offsets[row] = self._journal.append(record)
        counters["done"] += 1
        counters["failed"] += record["status"] != "completed"
        _crash_point("result_recorded")

    # --- Output -----------------------------------------------------------------------------

    def _write_output(self, state: _State) -> tuple[int, int, int]:
        """Write the output in input order, atomically, from the journal."""
        temp = self.output_path.with_name(self.output_path.name + ".partial")
        errors_temp = self.errors_path.with_name(self.errors_path.name + ".partial")
        completed = failed = invalid = 0
        as_csv = self.output_path.suffix.lower() == ".csv"
        with (
            temp.open("w", newline="", encoding="utf-8") as out,
            errors_temp.open("w", encoding="utf-8") as errors,
            self.journal_path.open("rb") as journal,
        ):
            writer: csv.DictWriter[str] | None = None
            for row in self.rows():
                record: dict[str, Any] | None = None
                if row.error is None and state.done(row.index):
                    journal.seek(state.offsets[row.index])
                    record = json.loads(journal.readline())
                if row.error is not None:
                    invalid += 1
                    _write_error(errors, row, "invalid", row.error)
                elif record is None:
                    raise ParallelError(f"Row {row.index + 1} has no result; run again.")
                elif record["status"] == "completed":
                    completed += 1
                elif record["status"] == "rejected":
                    invalid += 1
                    _write_error(errors, row, "rejected", record.get("error", ""))
                else:
                    failed += 1
                    _write_error(errors, row, record["status"], record.get("error", ""))
                if as_csv:
                    writer = writer or self._csv_writer(out)
                    writer.writerow(self._csv_row(row, record))
                else:
                    out.write(json.dumps(self._json_row(row, record), ensure_ascii=False) + "\n")
                if row.index % 1000 == 0:
                    _crash_point("writing_output")
            if as_csv and writer is None:
                self._csv_writer(out)
        os.replace(temp, self.output_path)
        if failed or invalid:
            os.replace(errors_temp, self.errors_path)
        else:
            errors_temp.unlink()
            self.errors_path.unlink(missing_ok=True)
        return completed, failed, invalid

    def _output_columns(self) -> list[str]:
        names = self.fields or ["output"]
        columns = [c for f in names for c in (f, f"{f}_confidence", f"{f}_citations")]
        return [*columns, "_status", "_run_id", "_error"]

    def _csv_writer(self, out: TextIO) -> csv.DictWriter[str]:
        columns = self._columns or ["input"]
        writer = csv.DictWriter(out, fieldnames=[*columns, *self._output_columns()])
        writer.writeheader()
        return writer

    def _csv_row(self, row: _Row, record: dict[str, Any] | None) -> dict[str, Any]:
        cells: dict[str, Any] = (
            dict(row.raw) if isinstance(row.raw, dict) else {"input": _cell(row.raw)}
        )
        cells.pop(None, None)  # type: ignore[call-overload]
        if record is None:
            cells.update({"_status": "invalid", "_error": row.error})
            return cells
        cells.update(
            {
                "_status": record["status"],
                "_run_id": record["run_id"],
                "_error": record.get("error"),
            }
        )
        output = record.get("output")
        if not output:
            return cells
        content = output.get("content")
        basis = {b["field"]: b for b in output.get("basis", [])}
        if self.fields and isinstance(content, dict):
            for name in self.fields:
                cells[name] = _cell(content.get(name))
                self._basis_cells(cells, name, basis, prefix=name)
        else:
            cells["output"] = _cell(content)
            self._basis_cells(cells, "output", basis, prefix=None)
        return cells

    @staticmethod
    def _basis_cells(
        cells: dict[str, Any], name: str, basis: dict[str, Any], prefix: str | None
    ) -> None:
        entries = [
            b
            for f, b in basis.items()
            if prefix is None or f == prefix or f.startswith(f"{prefix}.")
        ]
        urls: list[str] = []
        for entry in entries:
            for citation in entry.get("citations") or []:
                if citation["url"] not in urls:
                    urls.append(citation["url"])
        own = basis.get(name) or (entries[0] if entries else {})
        cells[f"{name}_confidence"] = own.get("confidence") or ""
        cells[f"{name}_citations"] = " ".join(urls)

    @staticmethod
    def _json_row(row: _Row, record: dict[str, Any] | None) -> dict[str, Any]:
        line: dict[str, Any] = {"row": row.index + 1, "input": row.raw}
        if record is None:
            return {**line, "status": "invalid", "error": row.error}
        line.update({"status": record["status"], "run_id": record["run_id"]})
        output = record.get("output")
        if output:
            line.update({"output": output.get("content"), "basis": output.get("basis", [])})
        if record.get("error"):
            line["error"] = record["error"]
        return line


def enrich(
    client: TaskClient,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    task: Task[Any, Any] | None = None,
    output: OutputSpec = None,
    processor: str | None = None,
    concurrency: int = 16,
    on_progress: Callable[[EnrichProgress], object] | None = None,
) -> EnrichSummary:
    """Enrich a file; see `Enrichment`. Call it again after an interruption to resume."""
    job = Enrichment(
        input_path,
        output_path,
        task=task,
        output=output,
        processor=processor,
        concurrency=concurrency,
    )
    return job.run(client, on_progress=on_progress)


def _output_fields(spec: dict[str, Any] | None) -> list[str] | None:
    schema = (spec or {}).get("output_schema")
    if isinstance(schema, dict) and schema.get("type") == "json":
        properties = schema.get("json_schema", {}).get("properties")
        if isinstance(properties, dict):
            return list(properties)
    return None


def _row_of(run: TaskRun) -> int | None:
    value = (run.metadata or {}).get(ROW_KEY)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _write_error(handle: TextIO, row: _Row, status: str, message: str) -> None:
    record = {"row": row.index + 1, "line": row.line, "status": status, "error": message}
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _next_batch_number(journal: Path) -> int:
    if not journal.exists():
        return 0
    highest = -1
    with journal.open("rb") as handle:
        for line in handle:
            if b'"t":"intent"' in line:
                try:
                    highest = max(highest, json.loads(line)["batch"])
                except (ValueError, KeyError):
                    continue
    return highest + 1


_crash_counts: dict[str, int] = {}


def _crash_point(name: str) -> None:
    wanted = os.environ.get(_CRASH_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
