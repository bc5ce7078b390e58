"""The emulator's state and behaviour, independent of HTTP (that is :mod:`._app`).

Runs advance by the clock. A run's end time is fixed when it is created; a timer on the event
loop that created it ends it on time, waking whoever waits (``/result`` holds, event streams,
group streams) and sending its webhook. Every request also settles runs that are due, so a run
still ends if its timer's loop has gone (an emulator used from several test event loops).
Nothing per run stays alive once it has ended: no tasks, no timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import httpx

from .._config import PROCESSORS
from .._exceptions import require
from .._models import TaskRun, TaskRunResult
from .._webhooks import sign_webhook
from ._answers import (
    AnswerRequest,
    FixtureStore,
    JSONInput,
    builtin_fixtures,
    check_inputs,
    load_fixture_file,
    make_fixture,
)
from ._events import KEEPALIVE, progress_trace, sse
from ._faults import Fault, FaultSet
from ._state import StoredGroup, StoredRun, rfc3339, run_seed
from ._validation import RunRequest, SpecCache

if TYPE_CHECKING:
    from ._app import EmulatorApp
    from ._server import EmulatorServer

__all__ = ["DEFAULT_API_KEY", "Emulator", "WebhookDelivery"]

DEFAULT_API_KEY: Final = "emulator-key"
"""The key handed out by test helpers when the emulator accepts any key."""

_MIB: Final = 1024 * 1024
# When a run's timer lives on another event loop, a waiter wakes this long after the due time
# and settles the run itself.
_LOST_TIMER_SLACK: Final = 0.05
_OUTPUT_CACHE_SIZE: Final = 512


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One attempt to deliver a webhook.

    Attributes:
        run_id: The run the event is about.
        url: Where it was sent.
        webhook_id: The ``webhook-id`` header (the same for every attempt of one event).
        attempt: 1 for the first try, then 2, 3, ...
        status_code: The receiver's HTTP status, or None when the request failed.
        error: Why the request failed, when it did.
    """

    run_id: str
    url: str
    webhook_id: str
    attempt: int
    status_code: int | None
    error: str | None


class Emulator:
    """A local, in-memory emulation of Parallel's Task API.

    Args:
        time_scale: Multiplies the processors' documented latencies: at 0.001 a ``lite`` run
            (10-60 s) takes 10-60 ms; at 0 runs end as soon as the event loop gets to them.
        api_keys: The accepted ``x-api-key`` values; None accepts any non-empty key.
        webhook_secret: The secret webhooks are signed with.
        max_result_hold: Caps, in seconds, how long ``/result`` holds a request, whatever its
            ``timeout``; None honours the timeout (the API's default is 600 s).
        seed: Fixes synthetic answers and run durations.
        builtin_fixtures: Answer the quickstart's United Nations examples as Parallel did.
        max_body_bytes: Larger request bodies get 413.
        sse_max_seconds: A run event stream closes after this long, as the API's do at 570 s.
        group_events_max_seconds: A group event stream closes after this long at most.
        keepalive_interval: Seconds between ``: keepalive`` comments on idle event streams.
        webhook_max_attempts: Deliveries answered with a non-2xx status are retried up to
            this many attempts in all.
        webhook_backoff: The first retry's delay in API seconds (scaled by ``time_scale``);
            each next one doubles.
        control_api: Serve ``/_emulator/...`` (faults, fixtures, counts, reset) over HTTP.
        webhook_transport: An httpx transport for webhook deliveries (e.g. an
            ``httpx.ASGITransport`` to a receiver app); None uses the network.
    """

    OPTIONS: Final = (
        "time_scale",
        "api_keys",
        "webhook_secret",
        "max_result_hold",
        "seed",
        "max_body_bytes",
        "sse_max_seconds",
        "group_events_max_seconds",
        "keepalive_interval",
        "webhook_max_attempts",
        "webhook_backoff",
        "control_api",
        "webhook_transport",
    )
    """Options that :meth:`configure` can change on a live emulator."""

    time_scale: float
    api_keys: frozenset[str] | None
    webhook_secret: str
    max_result_hold: float | None
    seed: int
    max_body_bytes: int
    sse_max_seconds: float
    group_events_max_seconds: float
    keepalive_interval: float
    webhook_max_attempts: int
    webhook_backoff: float
    control_api: bool
    webhook_transport: httpx.AsyncBaseTransport | None

    def __init__(
        self,
        *,
        time_scale: float = 0.001,
        api_keys: Iterable[str] | None = None,
        webhook_secret: str = "whsec_test",
        max_result_hold: float | None = None,
        seed: int = 0,
        builtin_fixtures: bool = True,
        max_body_bytes: int = 8 * _MIB,
        sse_max_seconds: float = 570.0,
        group_events_max_seconds: float = 3600.0,
        keepalive_interval: float = 15.0,
        webhook_max_attempts: int = 8,
        webhook_backoff: float = 5.0,
        control_api: bool = True,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._defaults: dict[str, Any] = {
            "time_scale": time_scale,
            "api_keys": api_keys,
            "webhook_secret": webhook_secret,
            "max_result_hold": max_result_hold,
            "seed": seed,
            "max_body_bytes": max_body_bytes,
            "sse_max_seconds": sse_max_seconds,
            "group_events_max_seconds": group_events_max_seconds,
            "keepalive_interval": keepalive_interval,
            "webhook_max_attempts": webhook_max_attempts,
            "webhook_backoff": webhook_backoff,
            "control_api": control_api,
            "webhook_transport": webhook_transport,
        }
        self.configure(**self._defaults)
        self._builtin_fixtures = builtin_fixtures
        self._lock = threading.Lock()
        self._faults = FaultSet()
        self._fixtures = FixtureStore()
        self._specs = SpecCache()
        self._runs: dict[str, StoredRun] = {}
        self._groups: dict[str, StoredGroup] = {}
        self._run_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._group_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._outputs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._webhook_tasks: set[asyncio.Task[None]] = set()
        self._ssl_context: ssl.SSLContext | None = None
        self._app: EmulatorApp | None = None
        self.request_counts: Counter[str] = Counter()
        """Requests received per endpoint name (see the package docstring), faulted or not."""
        self.webhook_deliveries: deque[WebhookDelivery] = deque(maxlen=10_000)
        """Every webhook delivery attempt, oldest first (the last 10,000)."""
        self._load_builtin_fixtures()

    # --- configuration ---------------------------------------------------------------------

    def configure(self, **options: Any) -> None:
        """Change options (any of :attr:`OPTIONS`, as in the constructor) on a live emulator.

        Raises:
            TypeError: an unknown option.
            ValueError: an invalid value.
        """
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise TypeError(
                f"Unknown emulator option(s): {', '.join(unknown)}. "
                f"Known: {', '.join(self.OPTIONS)}."
            )
        for name, value in options.items():
            if name == "api_keys":
                keys = None if value is None else frozenset(value)
                if keys is not None and (
                    not keys or not all(isinstance(k, str) and k for k in keys)
                ):
                    raise ValueError(
                        "API keys must be non-empty strings (api_keys=None accepts any key)."
                    )
                value = keys
            elif name in (
                "time_scale",
                "webhook_backoff",
                "keepalive_interval",
                "sse_max_seconds",
                "group_events_max_seconds",
            ):
                value = float(value)
                if value < 0 or (value == 0 and name == "keepalive_interval"):
                    raise ValueError(f"{name} must be positive, not {value}.")
            elif name == "max_result_hold" and value is not None:
                value = float(value)
                if value < 0:
                    raise ValueError("max_result_hold must not be negative.")
            elif name in ("max_body_bytes", "webhook_max_attempts") and int(value) < 1:
                raise ValueError(f"{name} must be at least 1.")
            elif name == "webhook_secret" and not (isinstance(value, str) and value):
                raise ValueError("webhook_secret must be a non-empty string.")
            setattr(self, name, value)

    def reset(self, *, restore_options: bool = False) -> None:
        """Forget every run, group, fault, custom fixture, count and webhook delivery.

        Built-in fixtures stay. With ``restore_options``, the constructor's options come back.
        """
        with self._lock:
            self._runs = {}
            self._groups = {}
            self._outputs = OrderedDict()
            group_waiters, self._group_waiters = self._group_waiters, {}
        # Group streams of forgotten groups close now rather than at their next wake-up. The
        # server thread may still be removing its own waiters from the old dict and lists, so
        # work on copies (list() of a dict or list runs under the GIL, in one step).
        for futures in list(group_waiters.values()):
            self._wake(futures)
        self._faults.clear()
        self._fixtures.clear()
        self._load_builtin_fixtures()
        self.request_counts.clear()
        # Deliveries still retrying belong to the forgotten runs; they must not reach a
        # receiver (or the delivery log) of whatever comes next.
        for task in list(self._webhook_tasks):
            with contextlib.suppress(RuntimeError):  # its loop may be closed
                task.get_loop().call_soon_threadsafe(task.cancel)
        self.webhook_deliveries.clear()
        if restore_options:
            self.configure(**self._defaults)

    @property
    def app(self) -> EmulatorApp:
        """The ASGI application serving this emulator (created on first use)."""
        if self._app is None:
            require("The emulator", "emulator", "starlette")
            from ._app import EmulatorApp

            self._app = EmulatorApp(self)
        return self._app

    @contextmanager
    def serve(
        self, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning"
    ) -> Iterator[EmulatorServer]:
        """Serve the emulator with uvicorn in a background thread until the block ends.

        Args:
            host: The address to listen on (loopback by default).
            port: The port; 0 picks a free one (see ``server.base_url``).
            log_level: uvicorn's log level.
        """
        require("The emulator", "emulator", "starlette", "uvicorn")
        from ._server import EmulatorServer

        server = EmulatorServer(self, host=host, port=port, log_level=log_level)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    # --- fixtures and faults ---------------------------------------------------------------

    def add_fixture(
        self,
        input: JSONInput | Sequence[JSONInput],
        output: str | dict[str, Any],
        basis: list[dict[str, Any]] | None = None,
        *,
        processor: str | None = None,
        description_contains: str | None = None,
        output_schema: dict[str, Any] | None = None,
    ) -> None:
        """Answer runs with this input (or any of a list of inputs) with ``output``, verbatim.

        Args:
            input: A string or JSON object, or a list of them. Strings match ignoring case and
                surrounding whitespace.
            output: A string answers runs with a text output schema; an object answers runs
                whose JSON schema it fits, and auto runs.
            basis: The basis returned with it, verbatim; None generates one per field.
            processor: Only for runs on this processor.
            description_contains: Only when the output description or schema contains this.
            output_schema: The schema reported to auto runs; inferred from ``output`` if None.

        Raises:
            ValueError: a malformed part.
        """
        inputs = check_inputs(list(input) if isinstance(input, list | tuple) else [input])
        fixture = make_fixture(
            output,
            basis,
            processor=processor,
            description_contains=description_contains,
            output_schema=output_schema,
        )
        self._fixtures.add(inputs, fixture)

    def load_fixtures(self, path: str | Path) -> int:
        """Add the fixtures in a JSON file; returns how many were read.

        The file holds a list (or ``{"fixtures": [...]}``) of objects with ``input`` (or
        ``inputs``), ``output`` and the optional keys of :meth:`add_fixture`.

        Raises:
            ValueError: the file cannot be read or a fixture is malformed.
        """
        loaded = load_fixture_file(path)
        for inputs, fixture in loaded:
            self._fixtures.add(inputs, fixture)
        return len(loaded)

    def clear_fixtures(self, *, keep_builtin: bool = True) -> None:
        """Forget fixtures added with :meth:`add_fixture` (and the built-in ones unless kept)."""
        self._fixtures.clear()
        if keep_builtin:
            self._load_builtin_fixtures()

    def _load_builtin_fixtures(self) -> None:
        if self._builtin_fixtures:
            for inputs, fixture in builtin_fixtures():
                self._fixtures.add(inputs, fixture)

    def add_fault(self, fault: Fault | str) -> Fault:
        """Activate a fault (a :class:`Fault`, or its text form such as ``"create:429"``)."""
        return self._faults.add(Fault.parse(fault) if isinstance(fault, str) else fault)

    def clear_faults(self) -> None:
        """Deactivate every fault."""
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """The faults that can still fire, in the order they are consulted."""
        return self._faults.active()

    # --- inspection ------------------------------------------------------------------------

    @property
    def runs(self) -> Mapping[str, StoredRun]:
        """Every stored run by id (a read-only view)."""
        return MappingProxyType(self._runs)

    @property
    def groups(self) -> Mapping[str, StoredGroup]:
        """Every task group by id (a read-only view)."""
        return MappingProxyType(self._groups)

    def get_run(self, run_id: str) -> TaskRun:
        """The run as the API would return it now.

        Raises:
            KeyError: no such run.
        """
        return TaskRun.model_validate(self._runs[run_id].to_wire())

    def get_result(self, run_id: str) -> TaskRunResult | None:
        """The run's result, or None while it is active or when it failed.

        Raises:
            KeyError: no such run.
        """
        run = self._runs[run_id]
        if run.final != "completed":
            return None
        return TaskRunResult.model_validate(self.result_wire(run))

    # --- runs ------------------------------------------------------------------------------

    def check_api_key(self, key: str | None) -> bool:
        """Whether ``key`` may use the API."""
        if not key:
            return False
        return self.api_keys is None or key in self.api_keys

    def admit_runs(
        self,
        requests: list[RunRequest],
        *,
        endpoint: str,
        body: bytes | None,
        group: StoredGroup | None = None,
    ) -> list[StoredRun]:
        """Store new runs and schedule their ends."""
        now = time.time()
        runs = []
        for request in requests:
            processor = PROCESSORS[request.processor]
            fraction = run_seed(self.seed, request.processor, request.input)
            latency = processor.min_seconds + fraction * (
                processor.max_seconds - processor.min_seconds
            )
            spec = request.spec
            run = StoredRun(
                run_id="trun_" + secrets.token_hex(16),
                processor=processor.name,
                input=request.input,
                spec=spec,
                fields=request.fields or None,
                created=now,
                duration=latency * self.time_scale,
                fail_message=self._faults.take_fail_run(endpoint, body),
                warnings=tuple(request.warnings) or None,
                taskgroup_id=group.taskgroup_id if group else None,
                fixture=self._fixtures.find(
                    request.input, spec.kind, spec.json_schema, spec.description, processor.name
                ),
            )
            runs.append(run)
        with self._lock:
            for run in runs:
                self._runs[run.run_id] = run
            if group is not None:
                group.add_runs(runs, now)
        if group is not None:
            self._wake(self._group_waiters.pop(group.taskgroup_id, None))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return runs  # no loop to time them: requests settle them when due
        for run in runs:
            loop.call_later(max(run.end - time.time(), 0.0), self._finalize, run)
        return runs

    def settle(self, run: StoredRun) -> None:
        """End ``run`` if it is due (its timer may not have fired yet, or ever)."""
        if run.final is None and time.time() >= run.end:
            self._finalize(run)

    def settle_group(self, group: StoredGroup) -> None:
        """End every due run of ``group``."""
        now = time.time()
        for run in [r for r in group.active.values() if now >= r.end]:
            self._finalize(run)

    def _finalize(self, run: StoredRun) -> None:
        with self._lock:
            if run.final is not None:
                return
            run.final = "failed" if run.fail_message is not None else "completed"
            # A run forgotten by reset() still ends, so whoever holds it gets an answer, but
            # it no longer touches groups or sends webhooks.
            stored = self._runs.get(run.run_id) is run
            group = self._groups.get(run.taskgroup_id) if stored and run.taskgroup_id else None
            if group is not None:
                group.finish(run, time.time())
        self._wake(self._run_waiters.pop(run.run_id, None))
        if group is not None:
            self._wake(self._group_waiters.pop(group.taskgroup_id, None))
        url = run.webhook_url if stored else None
        if url:
            self._send_webhook(run, url)

    async def wait_terminal(self, run: StoredRun, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``run`` to end; returns whether it has."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self.settle(run)
            if run.final is not None:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            due = max(run.end - time.time(), 0.0) + _LOST_TIMER_SLACK
            await self._wait(self._run_waiters, run.run_id, min(remaining, due))

    async def _wait(
        self, waiters: dict[str, list[asyncio.Future[None]]], key: str, timeout: float
    ) -> bool:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.setdefault(key, []).append(future)
        try:
            async with asyncio.timeout(timeout):
                await future
            return True
        except TimeoutError:
            return False
        finally:
            pending = waiters.get(key)
            if pending is not None and future in pending:
                pending.remove(future)
                if not pending:
                    del waiters[key]

    @staticmethod
    def _wake(futures: list[asyncio.Future[None]] | None) -> None:
        if not futures:
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for future in list(futures):
            loop = future.get_loop()
            if loop is current:
                _resolve(future)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    def output_wire(self, run: StoredRun) -> dict[str, Any]:
        """The completed run's ``output`` (generated once, then cached for a while).

        The dict is shared with the cache: serialise it, do not modify it.
        """
        output = self._outputs.get(run.run_id)
        if output is None:
            spec = run.spec
            fields = run.fields
            servers = fields.get("mcp_servers") if fields else None
            from ._answers import build_output

            output = build_output(
                AnswerRequest(
                    input=run.input,
                    kind=spec.kind,
                    json_schema=spec.json_schema,
                    description=spec.description,
                    processor=run.processor,
                    mcp_servers=servers,
                    seed=self.seed,
                ),
                run.fixture,
            )
            self._outputs[run.run_id] = output
            if len(self._outputs) > _OUTPUT_CACHE_SIZE:
                self._outputs.popitem(last=False)
        return output

    def result_wire(self, run: StoredRun) -> dict[str, Any]:
        """The ``TaskRunResult`` of a completed run."""
        return {"run": run.to_wire(), "output": self.output_wire(run)}

    # --- event streams ---------------------------------------------------------------------

    async def run_events(self, run: StoredRun) -> AsyncIterator[bytes]:
        """A run's event stream: its state, the progress so far, live progress, the end."""
        loop = asyncio.get_running_loop()
        closes_at = loop.time() + self.sse_max_seconds
        self.settle(run)
        yield sse(_state_event(run.to_wire()))
        now = time.time()
        trace = progress_trace(run)
        past = [event for at, event in trace if at <= now]
        # Only the latest stats snapshot is replayed, after the messages, as the API does.
        stats = [e for e in past if e["type"] == "task_run.progress_stats"]
        for event in [e for e in past if e["type"] != "task_run.progress_stats"] + stats[-1:]:
            yield sse(event)
        for at, event in trace[len(past) :]:
            async for keepalive in self._sleep_until(at, closes_at):
                yield keepalive
            if loop.time() >= closes_at:
                return
            yield sse(event)
        while not await self.wait_terminal(
            run, min(self.keepalive_interval, max(closes_at - loop.time(), 0.0))
        ):
            if loop.time() >= closes_at:
                return
            yield KEEPALIVE
        wire = run.to_wire()
        if run.final == "completed":
            yield sse(_state_event(wire, output=self.output_wire(run)))
        else:
            yield sse(_state_event(wire))
            yield sse({"type": "error", "error": wire["error"]})

    async def _sleep_until(self, at: float, closes_at: float) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        while True:
            remaining = min(at - time.time(), closes_at - loop.time())
            if remaining <= 0:
                return
            if remaining > self.keepalive_interval:
                await asyncio.sleep(self.keepalive_interval)
                yield KEEPALIVE
            else:
                await asyncio.sleep(remaining)

    def group_runs_events(
        self,
        group: StoredGroup,
        *,
        after: int,
        status: str | None,
        include_input: bool,
        include_output: bool,
    ) -> Iterator[bytes]:
        """The ``GET .../runs`` snapshot: one ``task_run.state`` per run after cursor ``after``."""
        self.settle_group(group)
        for index in range(after, len(group.run_ids)):
            run = self._runs.get(group.run_ids[index])
            if run is None:
                continue
            wire = run.to_wire()
            if status is not None and wire["status"] != status:
                continue
            yield sse(
                {
                    "type": "task_run.state",
                    "event_id": str(index + 1),
                    "run": wire,
                    "input": run.input_wire() if include_input else None,
                    "output": self.output_wire(run)
                    if include_output and run.final == "completed"
                    else None,
                }
            )

    async def group_events(
        self, group: StoredGroup, *, after: int, timeout: float | None
    ) -> AsyncIterator[bytes]:
        """The ``GET .../events`` stream: the log after ``after``, live, until the group is idle."""
        loop = asyncio.get_running_loop()
        limit = self.group_events_max_seconds
        closes_at = loop.time() + (limit if timeout is None else min(timeout, limit))
        position = after
        while self._groups.get(group.taskgroup_id) is group:  # else forgotten by reset()
            self.settle_group(group)
            while position < len(group.log):
                kind, value = group.log[position]
                position += 1
                yield sse(self._group_log_event(kind, value, position))
            if not group.is_active:
                return
            remaining = closes_at - loop.time()
            if remaining <= 0:
                return
            due = min(run.end for run in group.active.values()) - time.time()
            wait = min(remaining, self.keepalive_interval, max(due, 0.0) + _LOST_TIMER_SLACK)
            woken = await self._wait(self._group_waiters, group.taskgroup_id, wait)
            if not woken and wait == self.keepalive_interval:
                yield KEEPALIVE

    @staticmethod
    def _group_log_event(kind: str, value: Any, event_id: int) -> dict[str, Any]:
        if kind == "status":
            return {"type": "task_group_status", "event_id": str(event_id), "status": value}
        return {**_state_event(value.to_wire()), "event_id": str(event_id)}

    # --- groups ----------------------------------------------------------------------------

    def create_group(self, metadata: dict[str, Any] | None) -> StoredGroup:
        """Store a new, empty task group."""
        group = StoredGroup("tgrp_" + secrets.token_hex(24), metadata, time.time())
        with self._lock:
            self._groups[group.taskgroup_id] = group
        return group

    # --- webhooks --------------------------------------------------------------------------

    def _send_webhook(self, run: StoredRun, url: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        body = json.dumps(
            {"timestamp": rfc3339(time.time()), "type": "task_run.status", "data": run.to_wire()},
            separators=(",", ":"),
        ).encode()
        task = loop.create_task(self._deliver(run.run_id, url, body))
        self._webhook_tasks.add(task)
        task.add_done_callback(self._webhook_tasks.discard)

    async def _deliver(self, run_id: str, url: str, body: bytes) -> None:
        if self._ssl_context is None:
            # One context for all deliveries: building one reads the CA bundle, which is slow.
            self._ssl_context = ssl.create_default_context()
        webhook_id = "whevent_" + secrets.token_hex(12)
        delay = self.webhook_backoff * self.time_scale
        async with httpx.AsyncClient(
            transport=self.webhook_transport, verify=self._ssl_context, timeout=10.0
        ) as client:
            for attempt in range(1, self.webhook_max_attempts + 1):
                timestamp = int(time.time())
                headers = {
                    "content-type": "application/json",
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign_webhook(
                        body, webhook_id=webhook_id, timestamp=timestamp, secret=self.webhook_secret
                    ),
                }
                status: int | None = None
                error: str | None = None
                try:
                    response = await client.post(url, content=body, headers=headers)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                self.webhook_deliveries.append(
                    WebhookDelivery(run_id, url, webhook_id, attempt, status, error)
                )
                if status is not None and 200 <= status < 300:
                    return
                if attempt < self.webhook_max_attempts:
                    await asyncio.sleep(delay)
                    delay *= 2

    async def drain_webhooks(self, timeout: float = 5.0) -> None:
        """Wait until deliveries started on this event loop have finished (for tests)."""
        loop = asyncio.get_running_loop()
        mine = [t for t in self._webhook_tasks if t.get_loop() is loop]
        if mine:
            await asyncio.wait(mine, timeout=timeout)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _state_event(run: dict[str, Any], output: Any = None) -> dict[str, Any]:
    return {"type": "task_run.state", "event_id": None, "run": run, "input": None, "output": output}
