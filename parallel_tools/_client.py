"""`TaskClient` and `AsyncTaskClient`: the Task API over httpx.

Both are thin: every method hands one of `BaseClient`'s step generators to a driver that performs
the steps with httpx. Only the drivers (and, for `group_results`, the concurrency primitives)
differ between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import queue
import socket
import threading
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, Unpack, overload

import httpx
from pydantic import BaseModel

from ._base import (
    _MISSING,
    BaseClient,
    Call,
    CloseStream,
    CreateOptions,
    Done,
    Emit,
    NextLine,
    RunOutcome,
    Sleep,
    Step,
    Steps,
    _Stopped,
    first_time_by_id,
    outcome_is_ready as ready,
)
from ._exceptions import ParallelError, RunMayExistError
from ._models import (
    GroupEvent,
    RunEvent,
    RunStateEvent,
    TaskGroup,
    TaskGroupRunResponse,
    TaskRun,
    TaskRunResult,
)
from ._progress import Progress, ProgressTracker
from ._results import TaskResult
from ._schema import OutputSpec
from ._tasks import Task

__all__ = ["AsyncTaskClient", "TaskClient"]

logger = logging.getLogger("parallel_tools")

T = TypeVar("T")
OutputT = TypeVar("OutputT", bound=BaseModel)

_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class _SyncStream:
    __slots__ = ("lines", "response")

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()

    def abort(self) -> None:
        """Close the stream from another thread. Closing the response alone does not wake a
        thread blocked reading it, so the socket is shut down first."""
        network = self.response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):  # the reading thread may be closing it too
            self.response.close()


class _AsyncStream:
    __slots__ = ("lines", "response")

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()


class TaskClient(BaseClient[httpx.Client, httpx.BaseTransport]):
    """A synchronous client for Parallel's Task API.

    Configuration comes from the arguments, else `PARALLEL_API_KEY` / `PARALLEL_BASE_URL`, else
    `https://api.parallel.ai`. The key never appears in reprs, logs or errors.

    Args:
        api_key: The API key (default: `PARALLEL_API_KEY`).
        base_url: The API's URL (default: `PARALLEL_BASE_URL`, else the public API).
        timeout: Seconds per ordinary request, or an `httpx.Timeout`. Result holds and event
            streams set their own read timeouts above the server's hold.
        max_retries: Retries per request (see `RetryPolicy` for what is retried).
        retry: A full `RetryPolicy`, to tune backoff too.
        result_hold: Seconds each `/result` request asks the server to hold while waiting.
        http_client: An `httpx.Client` to use (for proxies, custom TLS, ...); it stays open
            when this client closes.
        transport: An httpx transport for the client this one creates (e.g. `MockTransport`).
        default_headers: Extra headers for every request.

    Example:
        >>> with TaskClient() as client:
        ...     result = client.run("United Nations", output="Founding date, MM-YYYY")
        ...     print(result.to_markdown())
    """

    def _new_http(self, transport: httpx.BaseTransport | None) -> httpx.Client:
        return httpx.Client(transport=transport, timeout=self.timeout, limits=_LIMITS)

    # --- Driver -----------------------------------------------------------------------------

    def _perform(self, step: Step, streams: list[_SyncStream]) -> Any:
        if isinstance(step, Call):
            request = self._http.build_request(
                step.method,
                self._url(step.path),
                params=step.params,
                json=step.json,
                headers=self._request_headers(step.headers),
                timeout=step.timeout,
            )
            if not step.stream:
                return self._http.send(request)
            response = self._http.send(request, stream=True)
            if not response.is_success:
                try:
                    response.read()
                finally:
                    response.close()
                return response
            handle = _SyncStream(response)
            streams.append(handle)
            return handle
        if isinstance(step, NextLine):
            return next(step.stream.lines, None)
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        if isinstance(step, CloseStream):
            step.stream.response.close()
            streams.remove(step.stream)
            return None
        raise AssertionError(f"unexpected step {step!r}")

    def _drive_iter(
        self, gen: Steps[Any], streams: list[_SyncStream] | None = None
    ) -> Iterator[Any]:
        # `streams` may be shared so that another thread can close them to stop this driver.
        streams = [] if streams is None else streams
        value: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    step = gen.throw(error) if error is not None else gen.send(value)
                except StopIteration as stop:
                    yield Done(stop.value)
                    return
                value, error = None, None
                if isinstance(step, Emit):
                    yield step.value
                    continue
                try:
                    value = self._perform(step, streams)
                except httpx.TransportError as exc:
                    error = exc
        finally:
            gen.close()
            for stream in list(streams):
                stream.response.close()

    def _drive(self, gen: Steps[T]) -> T:
        for item in self._drive_iter(gen):
            if isinstance(item, Done):
                return item.value  # type: ignore[no-any-return]
        raise AssertionError("step generator ended without a value")

    def _iterate(self, gen: Steps[None]) -> Iterator[Any]:
        for item in self._drive_iter(gen):
            if not isinstance(item, Done):
                yield item

    # --- Lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections (unless the httpx client was given to us)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> TaskClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- Runs -------------------------------------------------------------------------------

    def create_run(
        self,
        input: str | Mapping[str, Any] | BaseModel,
        *,
        output: OutputSpec = None,
        input_schema: OutputSpec = None,
        task_spec: Mapping[str, Any] | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskRun:
        """Start a run and return at once (status `queued`).

        Args:
            input: The question (a string) or a JSON object (a mapping or pydantic model).
            output: The output's shape; see `task_spec()`. Ignored when `task_spec` is given.
            input_schema: The input's shape, when the input is structured.
            task_spec: A ready wire task spec (checked locally against Parallel's rules).
            **options: The run's other fields (`processor`, `metadata`, `webhook`, ...); see
                `CreateOptions`.

        Raises:
            InvalidInputError: the input, spec or options break a limit (nothing was sent).
            RunMayExistError: the request failed after it may have been accepted.
            APIStatusError: the API refused (401, 402, 403, 422, 429 after retries, ...).
        """
        body = self._run_body(
            input, output=output, input_schema=input_schema, spec=task_spec, options=options
        )
        return self._drive(self._create_run_steps(body, self._beta_headers(options)))

    def get_run(self, run_id: str) -> TaskRun:
        """The run's current status (and its error, if it failed)."""
        return self._drive(self._get_run_steps(run_id))

    def get_run_input(self, run_id: str) -> dict[str, Any]:
        """The request the run was created with (input, processor, task spec, ...)."""
        return self._drive(self._get_run_input_steps(run_id))

    def result(self, run_id: str, *, timeout: int = 0) -> TaskRunResult | None:
        """One look at the result, holding up to `timeout` seconds on the server.

        Returns:
            The result, or None if the run is still going.

        Raises:
            TaskFailedError: the run failed or was cancelled.
            NotFoundError: there is no such run.
        """
        outcome = self._drive(self._result_once_steps(run_id, timeout))
        return outcome if isinstance(outcome, TaskRunResult) else None

    def wait(self, run_id: str, *, timeout: float | None = None) -> TaskRunResult:
        """Wait for a run's result however long it takes.

        Holds `/result` repeatedly (`result_hold` seconds each), treats 408 as "still running",
        and survives dropped connections and server errors. It returns as soon as the server
        answers, with no polling delay.

        Args:
            timeout: Our own deadline in seconds; None waits as long as the run lasts.

        Raises:
            TaskTimeoutError: the deadline passed; the run goes on, resume with its `run_id`.
            TaskFailedError: the run failed or was cancelled.
        """
        return self._drive(self._wait_steps(run_id, timeout))

    def events(self, run_id: str, *, reconnect: bool = True) -> Iterator[RunEvent]:
        """The run's progress events as they happen, ending with its final state.

        Yields `RunStateEvent`, `ProgressMessageEvent`, `ProgressStatsEvent`, `ErrorEvent`, and
        `UnknownEvent` for types this version does not know. When the server closes the stream
        while the run is active, it is reopened; replayed messages are not repeated.
        """
        return self._iterate(self._events_steps(run_id, reconnect))

    def wait_with_progress(
        self,
        run_id: str,
        on_progress: Callable[[Progress], object],
        *,
        timeout: float | None = None,
        heartbeat: float = 10.0,
    ) -> TaskRunResult:
        """`wait()`, calling `on_progress` for every progress event and at least every
        `heartbeat` seconds.

        The wait and the run's event stream each run on a helper thread and report through one
        queue, so `on_progress` is called live and always on the calling thread (it may use
        context-bound APIs such as LangChain's callbacks). Progress is best effort: if the event
        stream is unavailable, the heartbeats still come.
        """
        inbox: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()
        streams: list[_SyncStream] = []

        def follow() -> None:
            try:
                steps = self._events_steps(run_id, True, stop.is_set)
                for item in self._drive_iter(steps, streams):
                    if stop.is_set():
                        return
                    if not isinstance(item, Done):
                        inbox.put(item)
            except Exception as exc:  # progress is best effort; the wait decides the outcome
                logger.debug("progress stream for %s ended: %s", run_id, exc)

        def wait() -> None:
            # Holds no longer than a heartbeat, so this thread notices within one heartbeat
            # that its caller has gone, instead of holding /result until the run ends.
            hold = max(1, min(self.result_hold, math.ceil(heartbeat)))
            try:
                steps = self._wait_steps(run_id, timeout, hold=hold, stopped=stop.is_set)
                inbox.put(Done(self._drive(steps)))
            except _Stopped:
                return
            except BaseException as exc:  # handed to the calling thread
                inbox.put(exc)

        for target in (follow, wait):
            threading.Thread(target=target, name="parallel-tools-wait", daemon=True).start()
        tracker = ProgressTracker(run_id)
        try:
            while True:
                try:
                    item = inbox.get(timeout=heartbeat)
                except queue.Empty:
                    on_progress(tracker.snapshot())
                    continue
                if isinstance(item, Done):
                    result: TaskRunResult = item.value
                    return result
                if isinstance(item, BaseException):
                    raise item
                snapshot = tracker.update(item)
                if snapshot is not None:
                    on_progress(snapshot)
        finally:
            stop.set()
            for stream in list(streams):
                stream.abort()

    @overload
    def run(
        self,
        task: Task[Any, OutputT],
        input: Any,
        /,
        *,
        timeout: float | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskResult[OutputT]: ...

    @overload
    def run(
        self,
        input: str | Mapping[str, Any] | BaseModel,
        /,
        *,
        output: type[OutputT],
        input_schema: OutputSpec = None,
        timeout: float | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskResult[OutputT]: ...

    @overload
    def run(
        self,
        input: str | Mapping[str, Any] | BaseModel,
        /,
        *,
        output: str | Mapping[str, Any] | None = None,
        input_schema: OutputSpec = None,
        timeout: float | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskResult[Any]: ...

    def run(
        self,
        task_or_input: Any,
        input: Any = _MISSING,
        /,
        *,
        output: OutputSpec = None,
        input_schema: OutputSpec = None,
        timeout: float | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskResult[Any]:
        """Create a run, wait for it and parse the result: `run(task, input)` or
        `run(input, output=...)`.

        Args:
            task_or_input: A `Task`, or the input itself.
            input: The task's input, when the first argument is a `Task`.
            output: The output's shape when there is no task (a pydantic model gives a typed
                `parsed`, a string a cited text answer, None an auto schema).
            input_schema: The input's shape when there is no task.
            timeout: Seconds to wait before `TaskTimeoutError` (the run goes on).
            **options: The run's other fields; see `CreateOptions`.

        Raises:
            TaskTimeoutError: with the `run_id` to resume with `wait()`.
            TaskFailedError: the run failed.
            OutputValidationError: the output does not fit the model (raw result attached).
        """
        body, model = self._prepare_run(task_or_input, input, output, input_schema, options)
        return self._drive(self._run_steps(body, self._beta_headers(options), model, timeout))

    # --- Task groups --------------------------------------------------------------------------

    def create_group(self, *, metadata: Mapping[str, Any] | None = None) -> TaskGroup:
        """Create an empty task group."""
        return self._drive(self._create_group_steps(metadata))

    def get_group(self, group_id: str) -> TaskGroup:
        """The group's status: run counts by status and whether any is still active."""
        return self._drive(self._get_group_steps(group_id))

    def get_group_run(self, group_id: str, run_id: str) -> TaskRun:
        """One run of a group."""
        return self._drive(self._get_group_run_steps(group_id, run_id))

    def add_runs(
        self,
        group_id: str,
        runs: Iterable[Any],
        *,
        output: OutputSpec = None,
        default_task_spec: Mapping[str, Any] | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskGroupRunResponse:
        """Add any number of runs to a group, in requests of at most 1,000.

        Args:
            runs: Inputs (strings, mappings, models), or mappings with an `"input"` key plus
                run fields (`processor`, `metadata`, `task_spec`, ...). Consumed lazily, one
                batch at a time.
            output: The default output shape for runs without their own `task_spec`.
            default_task_spec: A ready default task spec instead of `output`.
            **options: Defaults for every run (`processor`, `metadata`, ...).

        Returns:
            All new run ids, the group's status after the last batch, and the cursors.

        Raises:
            RunMayExistError: a batch failed ambiguously; `created_run_ids` lists the runs of
                earlier batches, which exist.
        """
        steps = self._add_runs_steps(group_id, runs, output, default_task_spec, options)
        return self._drive(steps)

    def group_events(
        self,
        group_id: str,
        *,
        last_event_id: str | None = None,
        timeout: float | None = None,
        follow: bool = True,
    ) -> Iterator[GroupEvent]:
        """The group's status changes and run completions; resumable from `last_event_id`.

        With `follow`, the stream is reopened (from the last event) until the group is idle.
        """
        steps = self._group_events_steps(
            group_id, last_event_id=last_event_id, timeout=timeout, follow=follow
        )
        return self._iterate(steps)

    def group_runs(
        self,
        group_id: str,
        *,
        include_input: bool = False,
        include_output: bool = False,
        status: str | None = None,
        last_event_id: str | None = None,
    ) -> Iterator[RunStateEvent]:
        """A snapshot of the group's runs, as `task_run.state` events with cursors."""
        steps = self._group_runs_steps(
            group_id,
            include_input=include_input,
            include_output=include_output,
            status=status,
            last_event_id=last_event_id,
        )
        return self._iterate(steps)

    def run_batch(
        self,
        task: Task[Any, Any] | None,
        inputs: Sequence[Any],
        *,
        output: OutputSpec = None,
        timeout: float | None = None,
        concurrency: int = 8,
        group_metadata: Mapping[str, Any] | None = None,
        **options: Unpack[CreateOptions],
    ) -> list[RunOutcome[Any]]:
        """Run many inputs through one task group and return their outcomes in input order.

        Args:
            task: The task for every input, or None for plain inputs with `output`.
            inputs: The inputs (validated against the task's input model first).
            output: The output shape when there is no task.
            timeout: Seconds to wait; runs still going then get a `TaskTimeoutError` outcome
                carrying their run id.
            concurrency: How many results to fetch at once.
            group_metadata: Metadata for the group itself.
            **options: Fields for every run (`processor`, `metadata`, ...); a task's processor
                is used when none is given.
        """
        started = time.monotonic()
        items, spec, model = self._prepare_batch(task, inputs, output)
        if task is not None and "processor" not in options:
            options["processor"] = task.processor
        group = self.create_group(metadata=group_metadata)
        try:
            added = self.add_runs(group.taskgroup_id, items, default_task_spec=spec, **options)
        except ParallelError as exc:
            raise _in_group(exc, group.taskgroup_id) from None
        outcomes = self.group_results(
            group.taskgroup_id, output=model, concurrency=concurrency, timeout=timeout
        )
        return self._order_batch(added.run_ids, list(outcomes), time.monotonic() - started)

    def group_results(
        self,
        group_id: str,
        *,
        output: type[BaseModel] | None = None,
        concurrency: int = 8,
        skip: Iterable[str] = (),
        timeout: float | None = None,
        dedupe: Callable[[TaskRun], bool] | None = None,
    ) -> Iterator[RunOutcome[Any]]:
        """Every run's outcome as it finishes, in completion order.

        Results are fetched `concurrency` at a time and handed over as they arrive, so memory
        stays flat however large the group is.

        Args:
            output: A model to parse each result with.
            concurrency: How many results to fetch at once.
            skip: Run ids already handled (e.g. by an earlier, interrupted pass).
            timeout: Stop after this many seconds; runs not yet yielded go on (pass the ids
                already handled as `skip` to resume).
            dedupe: Instead of `skip`, a function that returns True the first time a run
                should be handled (e.g. a bitmap keyed by run metadata, to keep memory flat
                for very large groups).
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1.")
        outcomes: queue.Queue[Any] = queue.Queue()
        slots = threading.Semaphore(concurrency * 2)
        stop = threading.Event()
        end = object()

        def fetch(run: TaskRun | RunStateEvent) -> None:
            try:
                outcomes.put(self._drive(self._outcome_steps(run, output)))
            except BaseException as exc:  # a bug, not an API failure: surface it
                outcomes.put(exc)

        finished = self._finished_runs_steps(
            group_id, dedupe or first_time_by_id(skip), stop.is_set
        )
        streams: list[_SyncStream] = []

        def read() -> None:
            try:
                with ThreadPoolExecutor(concurrency, "parallel-tools-results") as pool:
                    for run in self._drive_iter(finished, streams):
                        if isinstance(run, Done):
                            break
                        while not slots.acquire(timeout=0.2):
                            if stop.is_set():
                                return
                        if stop.is_set():
                            return
                        if ready(run):  # no request needed: skip the thread hand-off
                            outcomes.put(self._drive(self._outcome_steps(run, output)))
                        else:
                            pool.submit(fetch, run)
            except BaseException as exc:  # handed to the consuming thread
                outcomes.put(exc)
            finally:
                outcomes.put(end)

        reader = threading.Thread(target=read, name="parallel-tools-group", daemon=True)
        reader.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                    item = outcomes.get(timeout=wait)
                except queue.Empty:
                    return
                if item is end:
                    return
                if isinstance(item, BaseException):
                    raise item
                slots.release()
                yield item
        finally:
            stop.set()
            for stream in list(streams):
                stream.abort()


class AsyncTaskClient(BaseClient[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """The asyncio twin of `TaskClient`: the same methods, as coroutines and async iterators.

    Args are as for `TaskClient`, with `http_client: httpx.AsyncClient` and
    `transport: httpx.AsyncBaseTransport`.
    """

    def _new_http(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, timeout=self.timeout, limits=_LIMITS)

    # --- Driver -----------------------------------------------------------------------------

    async def _perform(self, step: Step, streams: list[_AsyncStream]) -> Any:
        if isinstance(step, Call):
            request = self._http.build_request(
                step.method,
                self._url(step.path),
                params=step.params,
                json=step.json,
                headers=self._request_headers(step.headers),
                timeout=step.timeout,
            )
            if not step.stream:
                return await self._http.send(request)
            response = await self._http.send(request, stream=True)
            if not response.is_success:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                return response
            handle = _AsyncStream(response)
            streams.append(handle)
            return handle
        if isinstance(step, NextLine):
            return await anext(step.stream.lines, None)
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, CloseStream):
            await step.stream.response.aclose()
            streams.remove(step.stream)
            return None
        raise AssertionError(f"unexpected step {step!r}")

    async def _drive_iter(self, gen: Steps[Any]) -> AsyncIterator[Any]:
        streams: list[_AsyncStream] = []
        value: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    step = gen.throw(error) if error is not None else gen.send(value)
                except StopIteration as stop:
                    yield Done(stop.value)
                    return
                value, error = None, None
                if isinstance(step, Emit):
                    yield step.value
                    continue
                try:
                    value = await self._perform(step, streams)
                except httpx.TransportError as exc:
                    error = exc
        finally:
            gen.close()
            for stream in streams:
                await stream.response.aclose()

    async def _drive(self, gen: Steps[T]) -> T:
        async for item in self._drive_iter(gen):
            if isinstance(item, Done):
                return item.value  # type: ignore[no-any-return]
        raise AssertionError("step generator ended without a value")

    async def _iterate(self, gen: Steps[None]) -> AsyncGenerator[Any, None]:
        async for item in self._drive_iter(gen):
            if not isinstance(item, Done):
                yield item

    # --- Lifecycle --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the HTTP connections (unless the httpx client was given to us)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncTaskClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- Runs -------------------------------------------------------------------------------

    async def create_run(
        self,
        input: str | Mapping[str, Any] | BaseModel,
        *,
        output: OutputSpec = None,
        input_schema: OutputSpec = None,
        task_spec: Mapping[str, Any] | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskRun:
        """Start a run and return at once. See `TaskClient.create_run`."""
        body = self._run_body(
            input, output=output, input_schema=input_schema, spec=task_spec, options=options
        )
        return await self._drive(self._create_run_steps(body, self._beta_headers(options)))

    async def get_run(self, run_id: str) -> TaskRun:
        """The run's current status. See `TaskClient.get_run`."""
        return await self._drive(self._get_run_steps(run_id))

    async def get_run_input(self, run_id: str) -> dict[str, Any]:
        """The request the run was created with. See `TaskClient.get_run_input`."""
        return await self._drive(self._get_run_input_steps(run_id))

    async def result(self, run_id: str, *, timeout: int = 0) -> TaskRunResult | None:
        """One look at the result. See `TaskClient.result`."""
        outcome = await self._drive(self._result_once_steps(run_id, timeout))
        return outcome if isinstance(outcome, TaskRunResult) else None

    async def wait(self, run_id: str, *, timeout: float | None = None) -> TaskRunResult:
        """Wait for a run's result however long it takes. See `TaskClient.wait`."""
        return await self._drive(self._wait_steps(run_id, timeout))

    def events(self, run_id: str, *, reconnect: bool = True) -> AsyncIterator[RunEvent]:
        """The run's progress events as they happen. See `TaskClient.events`."""
        return self._iterate(self._events_steps(run_id, reconnect))

    async def wait_with_progress(
        self,
        run_id: str,
        on_progress: Callable[[Progress], object],
        *,
        timeout: float | None = None,
        heartbeat: float = 10.0,
    ) -> TaskRunResult:
        """`wait()`, calling `on_progress` (a function or coroutine function) for every
        progress event and at least every `heartbeat` seconds. See `TaskClient.wait_with_progress`.
        """
        tracker = ProgressTracker(run_id)
        last_report = time.monotonic()

        async def report(snapshot: Progress) -> None:
            nonlocal last_report
            last_report = time.monotonic()
            outcome = on_progress(snapshot)
            if inspect.isawaitable(outcome):
                await outcome

        async def follow() -> None:
            async with contextlib.aclosing(
                self._iterate(self._events_steps(run_id, True))
            ) as events:
                while True:
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        return
                    except Exception as exc:  # progress is best effort; the wait decides
                        logger.debug("progress stream for %s ended: %s", run_id, exc)
                        return
                    snapshot = tracker.update(event)
                    if snapshot is not None:
                        await report(snapshot)  # a failing callback ends the wait, as in sync

        async def beat() -> None:
            while True:
                await asyncio.sleep(max(0.0, last_report + heartbeat - time.monotonic()))
                if time.monotonic() - last_report >= heartbeat:
                    await report(tracker.snapshot())

        waiting = asyncio.create_task(self.wait(run_id, timeout=timeout))
        tasks = {waiting, asyncio.create_task(follow()), asyncio.create_task(beat())}
        try:
            pending = set(tasks)
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if waiting in done:
                    return waiting.result()
                for task in done:
                    error = task.exception()
                    if error is not None:
                        raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @overload
    async def run(
        self,
        task: Task[Any, OutputT],
        input: Any,
        /,
        *,
        timeout: float | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskResult[OutputT]: ...

    @overload
    async def run(
        self,
        input: str | Mapping[str, Any] | BaseModel,
        /,
        *,
        output: type[OutputT],
        input_schema: OutputSpec = None,
        timeout: float | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskResult[OutputT]: ...

    @overload
    async def run(
        self,
        input: str | Mapping[str, Any] | BaseModel,
        /,
        *,
        output: str | Mapping[str, Any] | None = None,
        input_schema: OutputSpec = None,
        timeout: float | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskResult[Any]: ...

    async def run(
        self,
        task_or_input: Any,
        input: Any = _MISSING,
        /,
        *,
        output: OutputSpec = None,
        input_schema: OutputSpec = None,
        timeout: float | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskResult[Any]:
        """Create, wait and parse in one call. See `TaskClient.run`."""
        body, model = self._prepare_run(task_or_input, input, output, input_schema, options)
        steps = self._run_steps(body, self._beta_headers(options), model, timeout)
        return await self._drive(steps)

    # --- Task groups --------------------------------------------------------------------------

    async def create_group(self, *, metadata: Mapping[str, Any] | None = None) -> TaskGroup:
        """Create an empty task group."""
        return await self._drive(self._create_group_steps(metadata))

    async def get_group(self, group_id: str) -> TaskGroup:
        """The group's status."""
        return await self._drive(self._get_group_steps(group_id))

    async def get_group_run(self, group_id: str, run_id: str) -> TaskRun:
        """One run of a group."""
        return await self._drive(self._get_group_run_steps(group_id, run_id))

    async def add_runs(
        self,
        group_id: str,
        runs: Iterable[Any],
        *,
        output: OutputSpec = None,
        default_task_spec: Mapping[str, Any] | None = None,
        **options: Unpack[CreateOptions],
    ) -> TaskGroupRunResponse:
        """Add any number of runs to a group. See `TaskClient.add_runs`."""
        steps = self._add_runs_steps(group_id, runs, output, default_task_spec, options)
        return await self._drive(steps)

    def group_events(
        self,
        group_id: str,
        *,
        last_event_id: str | None = None,
        timeout: float | None = None,
        follow: bool = True,
    ) -> AsyncIterator[GroupEvent]:
        """The group's events. See `TaskClient.group_events`."""
        steps = self._group_events_steps(
            group_id, last_event_id=last_event_id, timeout=timeout, follow=follow
        )
        return self._iterate(steps)

    def group_runs(
        self,
        group_id: str,
        *,
        include_input: bool = False,
        include_output: bool = False,
        status: str | None = None,
        last_event_id: str | None = None,
    ) -> AsyncIterator[RunStateEvent]:
        """A snapshot of the group's runs. See `TaskClient.group_runs`."""
        steps = self._group_runs_steps(
            group_id,
            include_input=include_input,
            include_output=include_output,
            status=status,
            last_event_id=last_event_id,
        )
        return self._iterate(steps)

    async def run_batch(
        self,
        task: Task[Any, Any] | None,
        inputs: Sequence[Any],
        *,
        output: OutputSpec = None,
        timeout: float | None = None,
        concurrency: int = 8,
        group_metadata: Mapping[str, Any] | None = None,
        **options: Unpack[CreateOptions],
    ) -> list[RunOutcome[Any]]:
        """Run many inputs through one task group. See `TaskClient.run_batch`."""
        started = time.monotonic()
        items, spec, model = self._prepare_batch(task, inputs, output)
        if task is not None and "processor" not in options:
            options["processor"] = task.processor
        group = await self.create_group(metadata=group_metadata)
        try:
            added = await self.add_runs(
                group.taskgroup_id, items, default_task_spec=spec, **options
            )
        except ParallelError as exc:
            raise _in_group(exc, group.taskgroup_id) from None
        outcomes = [
            outcome
            async for outcome in self.group_results(
                group.taskgroup_id, output=model, concurrency=concurrency, timeout=timeout
            )
        ]
        return self._order_batch(added.run_ids, outcomes, time.monotonic() - started)

    async def group_results(
        self,
        group_id: str,
        *,
        output: type[BaseModel] | None = None,
        concurrency: int = 8,
        skip: Iterable[str] = (),
        timeout: float | None = None,
        dedupe: Callable[[TaskRun], bool] | None = None,
    ) -> AsyncIterator[RunOutcome[Any]]:
        """Every run's outcome as it finishes. See `TaskClient.group_results`."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1.")
        outcomes: asyncio.Queue[Any] = asyncio.Queue()
        slots = asyncio.Semaphore(concurrency * 2)
        fetching = asyncio.Semaphore(concurrency)
        end = object()
        tasks: set[asyncio.Task[None]] = set()

        async def fetch(run: TaskRun | RunStateEvent) -> None:
            try:
                async with fetching:
                    await outcomes.put(await self._drive(self._outcome_steps(run, output)))
            except Exception as exc:  # a bug, not an API failure: surface it
                await outcomes.put(exc)

        finished = self._finished_runs_steps(group_id, dedupe or first_time_by_id(skip))

        async def read() -> None:
            try:
                async for run in self._iterate(finished):
                    await slots.acquire()
                    if ready(run):  # no request needed: no task either
                        await outcomes.put(await self._drive(self._outcome_steps(run, output)))
                        continue
                    task = asyncio.create_task(fetch(run))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                while tasks:
                    await asyncio.gather(*tasks)
            except Exception as exc:  # handed to the consumer
                await outcomes.put(exc)
            finally:
                await outcomes.put(end)

        reader = asyncio.create_task(read())
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                    item = await asyncio.wait_for(outcomes.get(), wait)
                except TimeoutError:
                    return
                if item is end:
                    return
                if isinstance(item, BaseException):
                    raise item
                slots.release()
                yield item
        finally:
            reader.cancel()
            for task in list(tasks):
                task.cancel()


def _in_group(exc: ParallelError, group_id: str) -> ParallelError:
    """Name the batch's task group in an error, so runs it already holds can be collected."""
    if exc.created_run_ids or isinstance(exc, RunMayExistError):
        exc.message += f" The runs are in task group {group_id} (see group_results)."
    return exc
