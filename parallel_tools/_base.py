"""Everything the sync and async clients share: configuration, requests, retries, waiting.

The logic is written once, as generators that *describe* I/O instead of doing it. Each yields
steps (`Call` an endpoint, `Sleep`, read the `NextLine` of a stream, `Emit` a value to the
caller) and receives the outcome. `TaskClient` and `AsyncTaskClient` each own a small driver that
performs those steps with `httpx.Client` or `httpx.AsyncClient`; that driver is the only code the
two clients do not share. So the retry policy, the wait loop, stream reconnection and error
mapping cannot drift apart between sync and async.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from . import __version__
from ._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_PROCESSOR,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_RESULT_HOLD,
    HOLD_READ_MARGIN,
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_VALUE_CHARS,
    MAX_RUNS_PER_GROUP_REQUEST,
    MAX_SOURCE_POLICY_DOMAINS,
)
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    ParallelError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RunMayExistError,
    SchemaError,
    TaskFailedError,
    TaskTimeoutError,
    UnprocessableEntityError,
)
from ._models import (
    TERMINAL_STATUSES,
    ErrorEvent,
    GroupEvent,
    ProgressMessageEvent,
    ProgressStatsEvent,
    RunEvent,
    RunStateEvent,
    TaskGroup,
    TaskGroupRunResponse,
    TaskGroupStatusEvent,
    TaskRun,
    TaskRunResult,
    UnknownEvent,
)
from ._results import TaskResult
from ._retry import RequestKind, RetryPolicy, is_ambiguous_create_failure, retry_after
from ._schema import OutputSpec, check_output_schema, check_request_size, task_spec
from ._sse import ServerSentEvent, SSEDecoder, parse_group_event, parse_run_event
from ._tasks import Task

logger = logging.getLogger("parallel_tools")

T = TypeVar("T")
OutputT = TypeVar("OutputT")
ModelT = TypeVar("ModelT", bound=BaseModel)

# An attempt that lasted this long before failing made progress (a long hold, a stream that
# delivered for a while); it does not count against the retry budget.
_PROGRESS_SECONDS = 10.0
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
# Streams are quiet between events; this read timeout only has to exceed the server's 570 s
# stream lifetime so a dead connection is noticed and reopened.
_STREAM_READ_TIMEOUT = 600.0


# --- Steps ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """Send one request. The driver answers with the read `httpx.Response`, or (for a successful
    `stream`) an open stream handle, and throws transport errors back into the generator."""

    method: str
    path: str
    timeout: httpx.Timeout
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None
    stream: bool = False


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait before the next step."""

    seconds: float


@dataclass(frozen=True, slots=True)
class NextLine:
    """Read the next line of an open stream; the driver answers None at its end."""

    stream: Any


@dataclass(frozen=True, slots=True)
class CloseStream:
    """Close an open stream."""

    stream: Any


@dataclass(frozen=True, slots=True)
class Emit:
    """Hand a value to the caller of an iterator."""

    value: Any


Step = Call | Sleep | NextLine | CloseStream | Emit
Steps = Generator[Step, Any, T]


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """Marks the return value of a driven generator in a driver's output."""

    value: T


class _DeadlinePassed(Exception):
    """Internal: the caller's deadline would pass before the next retry."""


class _Stopped(Exception):
    """Internal: whoever drives a wait asked it to stop (its caller has gone)."""


class _Holds:
    """How long to ask the server to hold `/result`, shortened when something keeps cutting
    holds off (a proxy or NAT box with an idle timeout shorter than the hold)."""

    def __init__(self, longest: int) -> None:
        self.current = longest

    def length(self, deadline: float | None) -> int:
        if deadline is None:
            return self.current
        return max(1, min(self.current, math.ceil(deadline - time.monotonic())))

    def dropped(self, lasted: float) -> None:
        if lasted >= 2.0:
            self.current = max(1, min(self.current, int(lasted / 2)))


# --- Options -------------------------------------------------------------------------------------


class CreateOptions(TypedDict, total=False):
    """Optional fields of a task run, as keyword arguments.

    Attributes:
        processor: The processor tier (default `"base"`); it sets the price (see PROCESSORS).
        metadata: Up to 16-character keys with string, number or boolean values (≤512 chars);
            echoed on the run and in group listings.
        source_policy: `{"include_domains": [...], "exclude_domains": [...], "after_date": ...}`.
        previous_interaction_id: Continue the context of an earlier run (its interaction id).
        mcp_servers: MCP servers the processor may call: `{"url", "name", "headers",
            "allowed_tools"}`.
        enable_events: Record progress events for the run's event stream.
        webhook: `{"url": ..., "event_types": ["task_run.status"]}`.
        advanced_settings: e.g. `{"location": "us"}`.
        memory_scope_key: The memory scope to use (omit for personal memory).
        betas: Values for the `parallel-beta` header.
        extra_body: Extra JSON fields, for API features newer than this library.
    """

    processor: str
    metadata: Mapping[str, str | int | float | bool] | None
    source_policy: Mapping[str, Any] | None
    previous_interaction_id: str | None
    mcp_servers: Sequence[Mapping[str, Any]] | None
    enable_events: bool | None
    webhook: Mapping[str, Any] | None
    advanced_settings: Mapping[str, Any] | None
    memory_scope_key: str | None
    betas: Sequence[str] | None
    extra_body: Mapping[str, Any] | None


_BODY_FIELDS = (
    "metadata",
    "source_policy",
    "previous_interaction_id",
    "mcp_servers",
    "enable_events",
    "webhook",
    "advanced_settings",
    "memory_scope_key",
)


@dataclass(frozen=True, slots=True)
class RunOutcome(Generic[OutputT]):
    """How one run of a group ended: its result, or the error that stands in for it.

    Attributes:
        run: The run as last seen (status, metadata, error).
        result: The parsed result when the run completed and its output was fetched.
        error: Why there is no result: the run failed (`TaskFailedError`), its output did not
            fit the model (`OutputValidationError`, which keeps the raw output), or fetching it
            failed (an `APIError`; fetch it again with `client.wait(run_id)`).
    """

    run: TaskRun
    result: TaskResult[OutputT] | None = None
    error: ParallelError | None = None

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.run.run_id

    @property
    def ok(self) -> bool:
        """True when there is a result."""
        return self.result is not None


# --- The shared client ---------------------------------------------------------------------------


HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)


class BaseClient(Generic[HttpT, TransportT]):
    """Configuration and every request, written as step generators (see the module docstring).

    The constructor is shared; each client only says which httpx client it makes
    (`_new_http`) and how it performs steps.
    """

    _http: HttpT

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_REQUEST_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        result_hold: int = DEFAULT_RESULT_HOLD,
        http_client: HttpT | None = None,
        transport: TransportT | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        key = key.strip()
        if not key:
            raise ConfigurationError(
                f"No Parallel API key. Pass api_key=... or set {API_KEY_ENV} (create a key at "
                "https://platform.parallel.ai). To work offline, start the emulator with "
                f"`parallel-tools emulator` and set {BASE_URL_ENV} to its URL and {API_KEY_ENV} "
                "to any non-empty value (or use parallel_tools.connect())."
            )
        if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
            # An HTTP header cannot carry it, and httpx's error would quote it.
            raise ConfigurationError(
                "The Parallel API key contains spaces, control or non-ASCII characters, so it "
                "cannot be sent. Copy it again from https://platform.parallel.ai."
            )
        url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"The base URL {url!r} is not an http(s) URL. Fix base_url or {BASE_URL_ENV}."
            )
        if result_hold < 1:
            raise ConfigurationError("result_hold must be at least 1 second.")
        self._api_key = key
        self.base_url = url
        if timeout is None or isinstance(timeout, httpx.Timeout):
            self.timeout = timeout or httpx.Timeout(None)
        else:
            self.timeout = httpx.Timeout(timeout, connect=min(timeout, DEFAULT_CONNECT_TIMEOUT))
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = dataclasses.replace(policy, max_retries=max_retries)
        self.retry = policy
        self.result_hold = result_hold
        self._headers = {
            "user-agent": f"parallel-tools/{__version__}",
            "accept": "application/json",
            **(default_headers or {}),
            "x-api-key": key,
        }
        if http_client is not None and transport is not None:
            raise TypeError("Pass either http_client or transport, not both.")
        # A client given to us is the caller's to close.
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else self._new_http(transport)

    def _new_http(self, transport: TransportT | None) -> HttpT:
        raise NotImplementedError

    def __repr__(self) -> str:
        # The key is never shown, not even in part.
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key=<hidden>)"

    # --- Requests ---------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _request_headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        return {**self._headers, **extra} if extra else self._headers

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
        stream: bool = False,
    ) -> Call:
        timeout = self.timeout
        if read_timeout is not None:
            timeout = httpx.Timeout(
                connect=timeout.connect,
                read=read_timeout,
                write=timeout.write,
                pool=timeout.pool,
            )
        return Call(method, path, timeout, params, json, headers, stream)

    def _send(
        self,
        call: Call | Callable[[], Call],
        kind: RequestKind = "read",
        *,
        run_id: str | None = None,
        passthrough: frozenset[int] = frozenset(),
        deadline: float | None = None,
        patient: bool = False,
        patient_connect: bool = True,
        on_drop: Callable[[float], None] | None = None,
    ) -> Steps[Any]:
        """Perform a call with the retry policy; return the response (or stream handle).

        Args:
            call: The call, or a function making it afresh for each attempt.
            kind: `"create"` for requests that may start a billed run (see `_retry`).
            run_id: The run concerned, for error messages.
            passthrough: Statuses returned to the caller instead of raised.
            deadline: A monotonic time the retries must not sleep past (`_DeadlinePassed`).
            patient: Retry transient failures for `outage_patience` seconds instead of
                `max_retries` times (for waits that may last hours).
            patient_connect: With `patient`, also be patient with failures to connect at all
                (False until the API has answered once).
            on_drop: Told how long a failed attempt lasted, so a caller can adapt (e.g.
                shorten result holds that something between us and the API keeps cutting).
        """
        make = call if callable(call) else (lambda: call)
        attempt = 0
        failing_since: float | None = None

        def exhausted(never_connected: bool = False) -> bool:
            if patient and failing_since is not None and not never_connected:
                return time.monotonic() - failing_since >= self.retry.outage_patience
            return attempt >= self.retry.max_retries

        while True:
            current = make()
            started = time.monotonic()
            try:
                outcome = yield current
            except httpx.TransportError as exc:
                if on_drop is not None:
                    on_drop(time.monotonic() - started)
                failing_since = failing_since or started
                # Patience is for outages of an API that answered before; one that cannot
                # even be connected to from the start (a wrong URL, no network) fails fast.
                unreachable = patient_connect is False and isinstance(exc, _CONNECT_ERRORS)
                if exhausted(unreachable) or not self.retry.should_retry_error(exc, kind):
                    raise self._transport_error(exc, current, kind, run_id, attempt) from exc
                delay = self.retry.backoff(attempt)
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if not isinstance(outcome, httpx.Response):
                    return outcome
                status = outcome.status_code
                if outcome.is_success or status in passthrough:
                    return outcome
                failing_since = failing_since or started
                if exhausted() or not self.retry.should_retry_status(outcome, kind):
                    raise self._status_error(outcome, kind, run_id, attempt)
                requested = self.retry.delay_for(outcome, attempt)
                if requested is None:
                    raise self._status_error(outcome, kind, run_id, attempt)
                delay = requested
                reason = f"HTTP {status}"
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise _DeadlinePassed
            attempt += 1
            logger.info(
                "%s %s failed (%s); retry %d/%d in %.2f s",
                current.method,
                current.path,
                self._redact(reason),
                attempt,
                self.retry.max_retries,
                delay,
            )
            yield Sleep(delay)

    def _parse(self, model: type[ModelT], response: httpx.Response, run_id: str | None) -> ModelT:
        """A 2xx body as a wire model; a body this client cannot read is an `APIError`."""
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            problem = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(map(str, problem["loc"])) or "(body)"
            raise APIError(
                f"{response.request.method} {response.request.url.path} answered HTTP "
                f"{response.status_code} with a body this client cannot read ({where}: "
                f"{problem['msg']}). If it persists, the API may have changed: upgrade "
                "parallel-tools.",
                request=response.request,
                body=response.text[:500],
                run_id=run_id,
            ) from None

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "<hidden>") if self._api_key in text else text

    def _status_error(
        self, response: httpx.Response, kind: RequestKind, run_id: str | None, retries: int
    ) -> ParallelError:
        status = response.status_code
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500] or None
        error = body.get("error") if isinstance(body, dict) else None
        server_message = ""
        ref_id = detail = None
        if isinstance(error, dict):
            server_message = str(error.get("message") or "")
            ref_id = error.get("ref_id")
            detail = error.get("detail")
        elif isinstance(body, dict) and "detail" in body:
            detail = body["detail"]
        elif isinstance(body, str):
            server_message = body
        server_message = self._redact(server_message)
        said = f": {server_message}" if server_message else ""
        where = f"{response.request.method} {response.request.url.path}"
        tried = f" after {retries + 1} attempts" if retries else ""
        if kind == "create" and is_ambiguous_create_failure(response):
            return RunMayExistError(
                f"Creating a run failed with HTTP {status}{said}{tried}. The server may have "
                "accepted the run before failing, so it was not retried (a retry could start and "
                "bill a second run). Check your runs at https://platform.parallel.ai before "
                "creating it again.",
                request=response.request,
                body=body,
                run_id=run_id,
                ref_id=ref_id,
            )
        advice, cls = _STATUS_ADVICE.get(status, (None, None))
        if cls is None:
            cls = InternalServerError if status >= 500 else APIStatusError
            advice = (
                "Parallel's API failed; try again later." if status >= 500 else "See the detail."
            )
        if status == 404 and run_id:
            advice = f"No run {run_id} exists for this API key; check the id."
        if status == 422 and detail:
            said += f" (detail: {self._redact(json.dumps(detail, default=str))[:1000]})"
        message = f"{where} returned HTTP {status}{said}{tried}. {advice}"
        kwargs: dict[str, Any] = {
            "response": response,
            "body": body,
            "run_id": run_id,
            "ref_id": ref_id,
            "detail": detail,
        }
        if cls is RateLimitError:
            return RateLimitError(message, retry_after=retry_after(response), **kwargs)
        return cls(message, **kwargs)

    def _transport_error(
        self,
        exc: httpx.TransportError,
        call: Call,
        kind: RequestKind,
        run_id: str | None,
        retries: int,
    ) -> ParallelError:
        what = f"{type(exc).__name__}: {self._redact(str(exc)) or 'no detail'}"
        if kind == "create" and is_ambiguous_create_failure(exc):
            return RunMayExistError(
                f"Creating a run failed after the request was sent ({what}). Parallel may have "
                "accepted it, so it was not retried (a retry could start and bill a second run). "
                "Check your runs at https://platform.parallel.ai before creating it again.",
                run_id=run_id,
            )
        tried = f" after {retries + 1} attempts" if retries else ""
        cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
        return cls(
            f"{call.method} {self.base_url}{call.path} got no answer ({what}){tried}. Check the "
            f"network, and {BASE_URL_ENV} if you set it.",
            run_id=run_id,
        )

    # --- Runs -------------------------------------------------------------------------------

    def _run_body(
        self,
        input: Any,
        *,
        output: OutputSpec = None,
        input_schema: OutputSpec = None,
        spec: Mapping[str, Any] | None = None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The JSON body of one run, checked against every limit we can check locally."""
        if spec is not None and (output is not None or input_schema is not None):
            raise TypeError("Pass either task_spec or output/input_schema, not both.")
        if isinstance(input, BaseModel):
            input = input.model_dump(mode="json")
        elif isinstance(input, Mapping):
            input = dict(input)
        elif not isinstance(input, str):
            raise InvalidInputError(
                f"A run's input must be a string or an object, not {type(input).__name__}."
            )
        if not input:
            raise InvalidInputError("A run's input must not be empty.")
        if spec is None:
            spec = task_spec(input=input_schema, output=output)
        else:
            _check_given_spec(spec)
        body: dict[str, Any] = {
            "input": input,
            "processor": options.get("processor") or DEFAULT_PROCESSOR,
        }
        if spec is not None:
            body["task_spec"] = dict(spec)
        for name in _BODY_FIELDS:
            value = options.get(name)
            if value is not None:
                body[name] = dict(value) if isinstance(value, Mapping) else value
        if "mcp_servers" in body:
            body["mcp_servers"] = [dict(s) for s in body["mcp_servers"]]
        _check_metadata(body.get("metadata"))
        _check_source_policy(body.get("source_policy"))
        problem = check_request_size(spec, input)
        if problem:
            raise InvalidInputError(f"The run is too large: {problem}.")
        body.update(options.get("extra_body") or {})
        return body

    @staticmethod
    def _beta_headers(options: Mapping[str, Any]) -> dict[str, str] | None:
        betas = options.get("betas")
        return {"parallel-beta": ",".join(betas)} if betas else None

    def _create_run_steps(self, body: dict[str, Any], headers: Any) -> Steps[TaskRun]:
        call = self._call("POST", "/v1/tasks/runs", json=body, headers=headers)
        response = yield from self._send(call, "create")
        run = self._parse(TaskRun, response, None)
        logger.debug("created run %s (processor %s)", run.run_id, run.processor)
        return run

    def _get_run_steps(self, run_id: str) -> Steps[TaskRun]:
        response = yield from self._send(
            self._call("GET", f"/v1/tasks/runs/{_id(run_id)}"), run_id=run_id
        )
        return self._parse(TaskRun, response, run_id)

    def _get_run_input_steps(self, run_id: str) -> Steps[dict[str, Any]]:
        response = yield from self._send(
            self._call("GET", f"/v1/tasks/runs/{_id(run_id)}/input"), run_id=run_id
        )
        data: dict[str, Any] = response.json()
        return data

    def _result_call(self, run_id: str, hold: int, deadline: float | None) -> Call:
        read = hold + HOLD_READ_MARGIN
        if deadline is not None:
            # Never sit on a stalled connection past the caller's deadline.
            read = max(1.0, min(read, deadline - time.monotonic() + 1.0))
        return self._call(
            "GET",
            f"/v1/tasks/runs/{_id(run_id)}/result",
            params={"timeout": hold},
            read_timeout=read,
        )

    def _result_once_steps(
        self,
        run_id: str,
        hold: int | _Holds,
        deadline: float | None = None,
        patient: bool = False,
        patient_connect: bool = True,
    ) -> Steps[TaskRunResult | TaskRun | None]:
        """One `/result` hold: the result, None if the hold ran out (408), or the run itself
        when the server says 404 but the run has not failed (so the caller can decide)."""
        holds = hold if isinstance(hold, _Holds) else None
        response = yield from self._send(
            (lambda: self._result_call(run_id, holds.length(deadline), deadline))
            if holds is not None
            else self._result_call(run_id, cast(int, hold), deadline),
            run_id=run_id,
            passthrough=frozenset({404, 408}),
            deadline=deadline,
            patient=patient,
            patient_connect=patient_connect,
            on_drop=holds.dropped if holds is not None else None,
        )
        if response.status_code == 408:
            return None
        if response.status_code == 404:
            # A failed run has no result: the run object says why.
            run = yield from self._get_run_steps(run_id)
            if run.status in ("failed", "cancelled"):
                raise _failed(run)
            return run
        return self._parse(TaskRunResult, response, run_id)

    def _wait_steps(
        self,
        run_id: str,
        timeout: float | None,
        *,
        hold: int | None = None,
        stopped: Callable[[], bool] | None = None,
    ) -> Steps[TaskRunResult]:
        """Hold `/result` again and again until the run ends or our deadline passes.

        Args:
            run_id: The run.
            timeout: Our own deadline in seconds (None: as long as the run takes).
            hold: The longest hold to ask for (default `result_hold`).
            stopped: Checked between holds; when it says so, the wait ends with `_Stopped`.
        """
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        holds = _Holds(hold or self.result_hold)
        odd = quick = 0
        # Outage patience starts once the API has answered: a wrong URL or a network that
        # was never up fails after the usual retries instead of minutes of silence.
        contacted = False
        while True:
            if stopped is not None and stopped():
                raise _Stopped
            if deadline is not None and deadline - time.monotonic() <= 0:
                raise _timeout(run_id, time.monotonic() - started)
            asked = holds.length(deadline)
            began = time.monotonic()
            try:
                outcome = yield from self._result_once_steps(
                    run_id, holds, deadline, patient=True, patient_connect=contacted
                )
            except _DeadlinePassed:
                raise _timeout(run_id, time.monotonic() - started) from None
            contacted = True
            if isinstance(outcome, TaskRunResult):
                return outcome
            if outcome is None:
                # A 408 long before the hold we asked for means something answers for the
                # API (a proxy) or ignores the hold: back off instead of spinning.
                if time.monotonic() - began < min(1.0, asked / 2):
                    quick += 1
                    yield Sleep(self.retry.backoff(min(quick - 1, 5)))
                else:
                    quick = 0
                continue
            # 404 while the run has not failed: just created (not visible yet), or completed
            # with the result not yet readable. Back off instead of spinning; give up if a
            # completed run's result stays missing.
            odd += 1
            if outcome.status == "completed" and odd > self.retry.max_retries:
                raise APIError(
                    f"Run {run_id} is completed but its result cannot be read yet (404). "
                    f"Try wait({run_id!r}) again later.",
                    run_id=run_id,
                )
            yield Sleep(self.retry.backoff(min(odd, 5)))

    def _events_steps(
        self, run_id: str, reconnect: bool, stopped: Callable[[], bool] = lambda: False
    ) -> Steps[None]:
        """A run's events, reconnecting while the run is active (and not `stopped()`);
        messages replayed on reconnection are not repeated."""
        seen: set[tuple[str, ...]] = set()
        state: dict[str, Any] = {"status": None, "finished": False}

        def accept(sse: ServerSentEvent) -> RunEvent | None:
            event = parse_run_event(sse)
            # Replays after a reconnect are not repeated; nor are they counted as progress.
            key: tuple[str, ...] | None = None
            if isinstance(event, ProgressMessageEvent):
                key = (event.type, event.message, event.timestamp or "")
            elif isinstance(event, ProgressStatsEvent | UnknownEvent):
                key = (event.type, sse.data)
            if key is not None:
                if key in seen:
                    return None
                seen.add(key)
            elif isinstance(event, RunStateEvent):
                ended = event.run.status in TERMINAL_STATUSES and (
                    event.output is not None or event.run.status != "completed"
                )
                if event.run.status == state["status"] and not ended:
                    return None
                state["status"] = event.run.status
                state["finished"] = state["finished"] or ended
            elif isinstance(event, ErrorEvent) and state["status"] in TERMINAL_STATUSES:
                state["finished"] = True
            return event

        yield from self._sse_steps(
            lambda _: self._call(
                "GET",
                f"/v1/tasks/runs/{_id(run_id)}/events",
                headers={"accept": "text/event-stream"},
                read_timeout=_STREAM_READ_TIMEOUT,
                stream=True,
            ),
            accept,
            lambda dropped: reconnect and not state["finished"],
            run_id=run_id,
            stopped=stopped,
        )

    def _sse_steps(
        self,
        make_call: Callable[[str | None], Call],
        accept: Callable[[ServerSentEvent], Any],
        keep_going: Callable[[bool], bool],
        *,
        run_id: str | None = None,
        stopped: Callable[[], bool] | None = None,
    ) -> Steps[None]:
        """Read an event stream, emitting what `accept` returns (unless None).

        When the stream ends, `keep_going(dropped)` decides whether to reopen it, resuming from
        the last SSE id; `dropped` says the connection failed rather than closed cleanly.
        `stopped()` is checked on every line (keep-alives included), so a reader on another
        thread can be told to let go.
        """
        last_id: str | None = None
        idle = 0
        while True:
            handle = yield from self._send(make_call(last_id), run_id=run_id)
            opened = time.monotonic()
            decoder = SSEDecoder()
            # Progress is a new event (replays and error events are not) or a connection that
            # stayed up a good while; without it, reopening backs off and eventually gives up.
            progressed = dropped = False
            try:
                while (line := (yield NextLine(handle))) is not None:
                    if stopped is not None and stopped():
                        yield CloseStream(handle)
                        return
                    sse = decoder.feed(line)
                    event = accept(sse) if sse is not None else None
                    if event is not None:
                        progressed = progressed or not isinstance(event, ErrorEvent)
                        yield Emit(event)
                tail = decoder.flush()
                event = accept(tail) if tail is not None else None
                if event is not None:
                    progressed = progressed or not isinstance(event, ErrorEvent)
                    yield Emit(event)
            except httpx.TransportError as exc:
                dropped = True
                logger.info("event stream dropped (%s: %s)", type(exc).__name__, exc)
            yield CloseStream(handle)
            last_id = decoder.last_event_id or last_id
            if not keep_going(dropped) or (stopped is not None and stopped()):
                return
            lasted = time.monotonic() - opened
            progressed = progressed or lasted >= _PROGRESS_SECONDS
            idle = 0 if progressed else idle + 1
            if idle > self.retry.max_retries:
                raise APIConnectionError(
                    f"The event stream closed {idle} times in a row without sending anything "
                    "new. Parallel may be having trouble; wait for the result instead.",
                    run_id=run_id,
                )
            if idle:
                yield Sleep(self.retry.backoff(idle - 1))
            elif lasted < 1.0:
                # Even a stream that keeps sending something must not be reopened in a loop.
                yield Sleep(self.retry.initial_delay)

    # --- Running a task end to end ------------------------------------------------------------

    def _prepare_run(
        self,
        task_or_input: Any,
        input: Any,
        output: OutputSpec,
        input_schema: OutputSpec,
        options: Mapping[str, Any],
    ) -> tuple[dict[str, Any], type[BaseModel] | None]:
        if isinstance(task_or_input, Task):
            task: Task[Any, Any] = task_or_input
            if input is _MISSING:
                raise TypeError(f"run({task.name!r}, input): the task's input is missing.")
            if output is not None or input_schema is not None:
                raise TypeError("A Task defines its own schemas; don't pass output/input_schema.")
            opts = {**options, "processor": options.get("processor") or task.processor}
            body = self._run_body(task.prepare_input(input), spec=task.spec, options=opts)
            return body, task.output_model
        if input is not _MISSING:
            raise TypeError("run(input, ...) takes one positional input unless given a Task.")
        body = self._run_body(
            task_or_input, output=output, input_schema=input_schema, options=options
        )
        model = output if isinstance(output, type) and issubclass(output, BaseModel) else None
        return body, model

    def _run_steps(
        self,
        body: dict[str, Any],
        headers: Any,
        output_model: type[BaseModel] | None,
        timeout: float | None,
    ) -> Steps[TaskResult[Any]]:
        run = yield from self._create_run_steps(body, headers)
        result = yield from self._wait_steps(run.run_id, timeout)
        return TaskResult.from_run_result(result, output_model)

    def _prepare_batch(
        self, task: Task[Any, Any] | None, inputs: Sequence[Any], output: OutputSpec
    ) -> tuple[list[Any], Mapping[str, Any] | None, type[BaseModel] | None]:
        """Inputs, default spec and output model for a batch, validated before any request."""
        if not inputs:
            raise InvalidInputError("A batch needs at least one input.")
        if task is None:
            model = output if isinstance(output, type) and issubclass(output, BaseModel) else None
            return list(inputs), task_spec(output=output), model
        if output is not None:
            raise TypeError("A Task defines its own output; don't pass output.")
        return [task.prepare_input(value) for value in inputs], task.spec, task.output_model

    @staticmethod
    def _order_batch(
        run_ids: Sequence[str], outcomes: Iterable[RunOutcome[Any]], waited: float
    ) -> list[RunOutcome[Any]]:
        """Outcomes in input order; runs that did not finish in time get a timeout error."""
        by_id = {o.run_id: o for o in outcomes}
        ordered: list[RunOutcome[Any]] = []
        for run_id in run_ids:
            outcome = by_id.get(run_id)
            if outcome is None:
                run = TaskRun(
                    run_id=run_id, interaction_id=run_id, status="running", is_active=True
                )
                outcome = RunOutcome(run=run, error=_timeout(run_id, waited))
            ordered.append(outcome)
        return ordered

    # --- Task groups --------------------------------------------------------------------------

    def _create_group_steps(self, metadata: Mapping[str, Any] | None) -> Steps[TaskGroup]:
        _check_metadata(metadata)
        body = {"metadata": dict(metadata)} if metadata else {}
        # An empty group costs nothing, so a duplicate from a retry is harmless.
        response = yield from self._send(self._call("POST", "/v1/tasks/groups", json=body))
        return self._parse(TaskGroup, response, None)

    def _get_group_steps(self, group_id: str) -> Steps[TaskGroup]:
        response = yield from self._send(self._call("GET", f"/v1/tasks/groups/{_id(group_id)}"))
        return self._parse(TaskGroup, response, None)

    def _get_group_run_steps(self, group_id: str, run_id: str) -> Steps[TaskRun]:
        path = f"/v1/tasks/groups/{_id(group_id)}/runs/{_id(run_id)}"
        response = yield from self._send(self._call("GET", path), run_id=run_id)
        return self._parse(TaskRun, response, run_id)

    def _add_runs_steps(
        self,
        group_id: str,
        runs: Iterable[Any],
        default_output: OutputSpec,
        default_task_spec: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> Steps[TaskGroupRunResponse]:
        if default_task_spec is not None and default_output is not None:
            raise TypeError("Pass either default_task_spec or output, not both.")
        spec = default_task_spec
        if spec is None and default_output is not None:
            spec = task_spec(output=default_output)
        elif spec is not None:
            _check_given_spec(spec)
        created: list[str] = []
        first: TaskGroupRunResponse | None = None
        last: TaskGroupRunResponse | None = None
        headers = self._beta_headers(options)

        def bodies(batch: list[Any]) -> list[dict[str, Any]]:
            return [self._group_run_body(item, spec, options) for item in batch]

        if isinstance(runs, Sequence) and not isinstance(runs, str):
            # A list in memory is checked whole before anything is sent, so a bad item late in
            # it cannot leave earlier batches created and the caller tempted to resend them.
            batches: Iterable[list[dict[str, Any]]] = [
                bodies(batch) for batch in _batched(runs, MAX_RUNS_PER_GROUP_REQUEST)
            ]
        else:
            # A lazy iterable stays lazy (flat memory): each batch is checked before it is sent.
            batches = (bodies(batch) for batch in _batched(runs, MAX_RUNS_PER_GROUP_REQUEST))
        iterator = iter(batches)
        while True:
            try:
                inputs = next(iterator, None)
                if inputs is None:
                    break
                body: dict[str, Any] = {"inputs": inputs}
                if spec is not None:
                    body["default_task_spec"] = dict(spec)
                call = self._call(
                    "POST", f"/v1/tasks/groups/{_id(group_id)}/runs", json=body, headers=headers
                )
                response = yield from self._send(call, "create")
            except ParallelError as exc:
                if created:
                    exc.created_run_ids = list(created)
                    exc.message += (
                        f" {len(created)} run(s) from earlier batches of this call were already "
                        "created (see created_run_ids); do not send them again."
                    )
                if isinstance(exc, RunMayExistError):
                    exc.message += " This batch may or may not have been created."
                raise
            last = self._parse(TaskGroupRunResponse, response, None)
            first = first or last
            created.extend(last.run_ids)
        if last is None or first is None:
            raise InvalidInputError("add_runs was given no runs.")
        return TaskGroupRunResponse(
            status=last.status,
            run_ids=created,
            run_cursor=first.run_cursor,
            event_cursor=first.event_cursor,
        )

    def _group_run_body(
        self, item: Any, spec: Mapping[str, Any] | None, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One entry of `inputs`: a plain input, or a mapping with `input` and run fields."""
        if isinstance(item, Mapping) and "input" in item:
            fields = dict(item)
            own_spec = fields.pop("task_spec", None)
            value = fields.pop("input")
            merged = {**options, **fields}
            body = self._run_body(value, spec=own_spec, options=merged)
            if own_spec is None and spec is not None:
                problem = check_request_size(spec, body["input"])
                if problem:
                    raise InvalidInputError(f"A run is too large: {problem}.")
            return body
        body = self._run_body(item, options=options)
        if spec is not None:
            problem = check_request_size(spec, body["input"])
            if problem:
                raise InvalidInputError(f"A run is too large: {problem}.")
        return body

    def _group_stream_call(
        self, group_id: str, endpoint: str, params: dict[str, Any], resume_from: str | None
    ) -> Call:
        if resume_from:
            params = {**params, "last_event_id": resume_from}
        return self._call(
            "GET",
            f"/v1/tasks/groups/{_id(group_id)}/{endpoint}",
            params=params,
            headers={"accept": "text/event-stream"},
            read_timeout=_STREAM_READ_TIMEOUT,
            stream=True,
        )

    def _group_events_steps(
        self,
        group_id: str,
        *,
        last_event_id: str | None = None,
        timeout: float | None = None,
        follow: bool = True,
        select: Callable[[GroupEvent], Any] = lambda event: event,
        stopped: Callable[[], bool] | None = None,
    ) -> Steps[None]:
        """A group's status and run-completion events; with `follow`, reopened (from the last
        event's cursor) until the group is inactive. `select` maps each event to what is
        emitted."""
        state: dict[str, Any] = {"active": True, "cursor": last_event_id}
        params: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}

        def accept(sse: ServerSentEvent) -> Any:
            event = parse_group_event(sse)
            # Parallel puts the cursor in the JSON `event_id`, not in SSE `id:` lines.
            state["cursor"] = event.event_id or state["cursor"]
            if isinstance(event, TaskGroupStatusEvent):
                state["active"] = event.status.is_active
            return select(event)

        yield from self._sse_steps(
            lambda resume: self._group_stream_call(
                group_id, "events", params, state["cursor"] or resume
            ),
            accept,
            lambda dropped: dropped or (follow and state["active"]),
            stopped=stopped,
        )

    def _group_runs_steps(
        self,
        group_id: str,
        *,
        include_input: bool = False,
        include_output: bool = False,
        status: str | None = None,
        last_event_id: str | None = None,
        select: Callable[[GroupEvent], Any] = lambda event: event,
        stopped: Callable[[], bool] | None = None,
    ) -> Steps[None]:
        """A snapshot of a group's runs (one pass; resumed from the last cursor only if the
        connection drops)."""
        state: dict[str, Any] = {"cursor": last_event_id}
        params: dict[str, Any] = {}
        if include_input:
            params["include_input"] = "true"
        if include_output:
            params["include_output"] = "true"
        if status:
            params["status"] = status

        def accept(sse: ServerSentEvent) -> Any:
            event = parse_group_event(sse)
            state["cursor"] = event.event_id or state["cursor"]
            return select(event)

        yield from self._sse_steps(
            lambda resume: self._group_stream_call(
                group_id, "runs", params, state["cursor"] or resume
            ),
            accept,
            lambda dropped: dropped,
            stopped=stopped,
        )

    def _finished_runs_steps(
        self,
        group_id: str,
        first_time: Callable[[TaskRun], bool],
        stopped: Callable[[], bool] | None = None,
    ) -> Steps[None]:
        """Emit each run of a group once it has ended (if `first_time(run)`): a `TaskRun` whose
        result is still to be fetched, or a `RunStateEvent` that already carries its output.

        While the group is active, completions come from its event stream, so results can be
        fetched as they arrive. Once it is idle, one snapshot of the group's runs with their
        outputs delivers everything not yet seen in a single streamed request, which is both
        the fast path for a finished group and the safety net for lost events.
        """

        def pick(event: GroupEvent) -> TaskRun | None:
            if (
                isinstance(event, RunStateEvent)
                and event.run.status in TERMINAL_STATUSES
                and first_time(event.run)
            ):
                return event.run
            return None

        def pick_with_output(event: GroupEvent) -> TaskRun | RunStateEvent | None:
            run = pick(event)
            if run is None:
                return None
            assert isinstance(event, RunStateEvent)
            return event if event.output is not None or run.status != "completed" else run

        group = yield from self._get_group_steps(group_id)
        if group.status.is_active:
            yield from self._group_events_steps(group_id, select=pick, stopped=stopped)
        if stopped is None or not stopped():
            yield from self._group_runs_steps(
                group_id, include_output=True, select=pick_with_output, stopped=stopped
            )

    def _outcome_steps(
        self, item: TaskRun | RunStateEvent, output: type[BaseModel] | None
    ) -> Steps[RunOutcome[Any]]:
        """A finished run's outcome: parsed from the event when it carries the output, else
        fetched. Any failure becomes the outcome's error."""
        run = item.run if isinstance(item, RunStateEvent) else item
        try:
            if run.status != "completed":
                raise _failed(run)
            if isinstance(item, RunStateEvent) and item.output is not None:
                data = {"run": run, "output": item.output}
                return RunOutcome(run=run, result=TaskResult.from_run_result(data, output))
            result = yield from self._wait_steps(run.run_id, None)
            return RunOutcome(run=result.run, result=TaskResult.from_run_result(result, output))
        except TaskFailedError as exc:
            return RunOutcome(run=exc.run, error=exc)
        except ParallelError as exc:
            return RunOutcome(run=run, error=exc)


# --- Helpers -------------------------------------------------------------------------------------

_MISSING: Any = object()

_STATUS_ADVICE: dict[int, tuple[str, type[APIStatusError]]] = {
    400: ("The request was malformed.", BadRequestError),
    401: (
        f"Check the API key (api_key or {API_KEY_ENV}); keys are at https://platform.parallel.ai.",
        AuthenticationError,
    ),
    402: (
        "Add credit at https://platform.parallel.ai. Running runs and task groups reserve "
        "credit, so finishing them also frees some.",
        PaymentRequiredError,
    ),
    403: (
        "The processor is not valid or not enabled for this key; use one of parallel_tools."
        "PROCESSORS.",
        PermissionDeniedError,
    ),
    404: ("Check the id.", NotFoundError),
    409: ("The request conflicts with the resource's current state.", ConflictError),
    422: ("Fix the request as the detail says.", UnprocessableEntityError),
    429: ("Too many requests; slow down or wait before retrying.", RateLimitError),
}


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    # itertools.batched arrived in Python 3.12.
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def outcome_is_ready(item: TaskRun | RunStateEvent) -> bool:
    """Whether `_outcome_steps` can settle this item without a request."""
    if isinstance(item, RunStateEvent):
        return item.output is not None or item.run.status != "completed"
    return item.status != "completed"


def first_time_by_id(skip: Iterable[str]) -> Callable[[TaskRun], bool]:
    """A `dedupe` for `group_results`: true once per run id, never for ids in `skip`."""
    seen = set(skip)

    def first_time(run: TaskRun) -> bool:
        if run.run_id in seen:
            return False
        seen.add(run.run_id)
        return True

    return first_time


def _id(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"Expected a run or group id, got {value!r}.")
    return quote(value.strip(), safe="")


def _failed(run: TaskRun) -> TaskFailedError:
    why = run.error.message if run.error and run.error.message else "no reason given"
    verb = "was cancelled" if run.status == "cancelled" else "failed"
    return TaskFailedError(
        f"Run {run.run_id} {verb}: {why}. Failed runs are not billed for a result; fix the input "
        "or try another processor, then start a new run.",
        run=run,
        ref_id=run.error.ref_id if run.error else None,
    )


def _timeout(run_id: str, waited: float) -> TaskTimeoutError:
    return TaskTimeoutError(
        f"Run {run_id} is still running after {waited:.0f} s of waiting. It was not cancelled and "
        f"keeps its result: call wait({run_id!r}) again later to collect it.",
        run_id=run_id,
        waited=waited,
    )


def _check_metadata(metadata: Mapping[str, Any] | None) -> None:
    for key, value in (metadata or {}).items():
        if len(key) > MAX_METADATA_KEY_CHARS:
            raise InvalidInputError(
                f"Metadata key {key!r} is longer than {MAX_METADATA_KEY_CHARS} characters."
            )
        if not isinstance(value, str | int | float | bool):
            raise InvalidInputError(
                f"Metadata value for {key!r} must be a string, number or boolean."
            )
        if isinstance(value, str) and len(value) > MAX_METADATA_VALUE_CHARS:
            raise InvalidInputError(
                f"Metadata value for {key!r} is longer than {MAX_METADATA_VALUE_CHARS} characters."
            )


def _check_source_policy(policy: Mapping[str, Any] | None) -> None:
    if not policy:
        return
    count = len(policy.get("include_domains") or []) + len(policy.get("exclude_domains") or [])
    if count > MAX_SOURCE_POLICY_DOMAINS:
        raise InvalidInputError(
            f"The source policy lists {count} domains; at most {MAX_SOURCE_POLICY_DOMAINS} are "
            "allowed."
        )


def _check_given_spec(spec: Mapping[str, Any]) -> None:
    """Reject a hand-written task spec that Parallel would reject, before paying for it."""
    output = spec.get("output_schema")
    if isinstance(output, Mapping) and output.get("type", "json") == "json":
        schema = output.get("json_schema")
        if schema is None:
            raise SchemaError('A "json" output schema needs a "json_schema".')
        errors = [str(i) for i in check_output_schema(schema) if i.severity == "error"]
        if errors:
            listing = "\n".join(f"  - {e}" for e in errors)
            raise SchemaError(
                f"The task spec's output schema cannot be used with Parallel:\n{listing}",
                problems=errors,
            )
