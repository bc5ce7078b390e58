"""The emulator's HTTP face: a starlette router speaking the Task API's wire format.

Every endpoint goes through the same steps: count the request, read the body (413 past
``max_body_bytes``), apply a fault if one matches, check ``x-api-key`` (401), then do the work;
faults marked ``after_accept`` fire after the work. Errors are ``ErrorResponse`` bodies
(``{"type": "error", "error": {"ref_id", "message", "detail"}}``), except validation errors on
group endpoints, which use FastAPI's ``{"detail": [...]}`` as Parallel's OpenAPI spec declares.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import httpx
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Message, Receive, Scope, Send

from ._answers import check_inputs, make_fixture
from ._faults import ACCEPTING_ENDPOINTS, Fault
from ._validation import (
    ApiError,
    ValidationFailed,
    check_metadata,
    parse_group_runs,
    parse_json,
    parse_run,
)

if TYPE_CHECKING:
    from ._emulator import Emulator
    from ._state import StoredGroup, StoredRun

__all__ = ["DropConnection", "EmulatorApp", "create_app"]

logger = logging.getLogger("parallel_tools.emulator")

MSG_401: Final = "Unauthorized: invalid or missing credentials"
MSG_RUN_404: Final = "Run id not found"
MSG_RESULT_404: Final = "Run failed or run id not found"
MSG_GROUP_404: Final = "TaskGroup not found"
MSG_408: Final = "Request timed out; run still active"
STATUS_MESSAGES: Final[dict[int, str]] = {
    400: "Bad request",
    401: MSG_401,
    402: "Payment required: insufficient credit in account",
    403: "Forbidden: invalid processor in request",
    404: "Not found",
    408: MSG_408,
    409: "Conflict",
    413: "Request body too large",
    422: "Unprocessable content: request validation error",
    429: "Too many requests: quota temporarily exceeded",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
RUN_STATUSES: Final = (
    "queued",
    "action_required",
    "running",
    "completed",
    "failed",
    "cancelling",
    "cancelled",
)
# Past this many bytes an oversized body is no longer read to the end before the 413: the
# connection closes instead. Reading it lets an ordinary client see the 413 rather than a reset.
_DRAIN_LIMIT: Final = 256 * 1024 * 1024
_SSE_HEADERS: Final = {"cache-control": "no-cache", "x-accel-buffering": "no"}

Handler = Callable[[Request, bytes | None], Awaitable[Response]]


class DropConnection(httpx.RemoteProtocolError):
    """Raised to drop the connection (a ``drop`` fault).

    Served by :meth:`Emulator.serve` or the command line, the connection is really closed. An
    app used directly through ``httpx.ASGITransport`` lets it propagate, so the client sees
    the same exception type httpx raises when a server hangs up.
    """

    def __init__(self, message: str = "Server disconnected without sending a response.") -> None:
        super().__init__(message)


def create_app(emulator: Emulator | None = None, **options: Any) -> EmulatorApp:
    """The ASGI application for ``emulator`` (or a new one built from ``options``)."""
    if emulator is None:
        from ._emulator import Emulator

        emulator = Emulator(**options)
    elif options:
        raise TypeError("Pass either an emulator or options for a new one, not both.")
    return emulator.app


def json_response(status: int, content: Any, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response."""
    body = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status, headers=headers, media_type="application/json")


def error_response(
    status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """An ``ErrorResponse`` with a fresh ``ref_id``."""
    error = {"ref_id": str(uuid.uuid4()), "message": message, "detail": detail}
    return json_response(status, {"type": "error", "error": error}, headers)


class EmulatorApp:
    """The ASGI application; see the package docstring for its routes."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.router = Router(
            routes=[*self._api_routes(), *self._control_routes()],
            redirect_slashes=False,
            default=self._not_found,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        # With "app" in the scope, starlette raises HTTPException for a wrong method instead of
        # answering in plain text, so every error stays JSON.
        scope["app"] = self
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.router(scope, receive, tracking_send)
        except DropConnection:
            raise
        except HTTPException as exc:
            if started:
                raise
            message = "Method not allowed" if exc.status_code == 405 else exc.detail
            headers = dict(exc.headers or {})
            await error_response(exc.status_code, message, None, headers)(scope, receive, send)
        except Exception:
            # Bad input must never get here; if a bug does, answer like an API would rather
            # than hang up, and say so in the log.
            logger.exception("Emulator error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await error_response(500, "Internal emulator error")(scope, receive, send)

    # --- routing -----------------------------------------------------------------------------

    def _api_routes(self) -> Iterable[BaseRoute]:
        run = "/v1/tasks/runs"
        yield Route(run, self._endpoint("create", self.create), methods=["POST"])
        yield Route(run + "/{run_id}", self._endpoint("retrieve", self.retrieve), methods=["GET"])
        yield Route(
            run + "/{run_id}/input", self._endpoint("input", self.get_input), methods=["GET"]
        )
        yield Route(
            run + "/{run_id}/result", self._endpoint("result", self.result), methods=["GET"]
        )
        for prefix in ("/v1", "/v1beta"):
            yield Route(
                prefix + "/tasks/runs/{run_id}/events",
                self._endpoint("events", self.events),
                methods=["GET"],
            )
            groups = prefix + "/tasks/groups"
            one = groups + "/{taskgroup_id}"
            group = self._group_endpoint
            yield Route(groups, group("group_create", self.group_create), methods=["POST"])
            yield Route(one, group("group_retrieve", self.group_retrieve), methods=["GET"])
            yield Route(one + "/runs", group("group_add_runs", self.group_add), methods=["POST"])
            yield Route(one + "/runs", group("group_runs", self.group_runs), methods=["GET"])
            yield Route(one + "/events", group("group_events", self.group_events), methods=["GET"])
            yield Route(one + "/runs/{run_id}", group("group_run", self.group_run), methods=["GET"])

    def _group_endpoint(
        self, name: str, handler: Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        return self._endpoint(name, handler, fastapi_validation=True)

    def _endpoint(
        self, name: str, handler: Handler, *, fastapi_validation: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        emulator = self.emulator

        async def endpoint(request: Request) -> Response:
            emulator.request_counts[name] += 1
            idents = tuple(request.path_params.values())
            after: Fault | None = None
            try:
                body = await self._read_body(request) if request.method == "POST" else None
                before = emulator._faults.take(name, idents, body, after_accept=False)
                if before is not None and (faulted := await _apply_fault(before)) is not None:
                    return faulted
                if not emulator.check_api_key(request.headers.get("x-api-key")):
                    raise ApiError(401, MSG_401)
                response = await handler(request, body)
                if name in ACCEPTING_ENDPOINTS and response.status_code < 300:
                    after = emulator._faults.take(name, idents, body, after_accept=True)
                    if after is not None and (faulted := await _apply_fault(after)) is not None:
                        return faulted
            except ValidationFailed as exc:
                if fastapi_validation:
                    return json_response(422, {"detail": exc.errors})
                return error_response(exc.status, exc.message, exc.detail, exc.headers)
            except ApiError as exc:
                return error_response(exc.status, exc.message, exc.detail, exc.headers)
            if any(f is not None and f.drop == "mid" for f in (before, after)):
                return _Truncated(response)
            return response

        return endpoint

    async def _read_body(self, request: Request) -> bytes:
        limit = self.emulator.max_body_bytes
        declared = request.headers.get("content-length", "")
        too_big = declared.isdigit() and int(declared) > limit
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                too_big = True
            if too_big:
                if size > _DRAIN_LIMIT:
                    break
                continue
            chunks.append(chunk)
        if too_big:
            raise ApiError(
                413,
                STATUS_MESSAGES[413],
                {"max_bytes": limit, "hint": "Send fewer runs per request, or a shorter input."},
            )
        return b"".join(chunks)

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.emulator.request_counts["unknown"] += 1
        message = f"Not found: no such endpoint {scope['method']} {scope['path']}"
        await error_response(404, message)(scope, receive, send)

    # --- runs --------------------------------------------------------------------------------

    def _run(self, request: Request, message: str = MSG_RUN_404) -> StoredRun:
        run = self.emulator.runs.get(request.path_params["run_id"])
        if run is None:
            raise ApiError(404, message)
        self.emulator.settle(run)
        return run

    async def create(self, request: Request, body: bytes | None) -> Response:
        """``POST /v1/tasks/runs``: 202 with the queued run."""
        data = parse_json(body or b"")
        parsed = parse_run(data, self.emulator._specs)
        (run,) = self.emulator.admit_runs([parsed], endpoint="create", body=body)
        return json_response(202, run.to_wire(status="queued"))

    async def retrieve(self, request: Request, body: bytes | None) -> Response:
        """``GET /v1/tasks/runs/{run_id}``."""
        return json_response(200, self._run(request).to_wire())

    async def get_input(self, request: Request, body: bytes | None) -> Response:
        """``GET /v1/tasks/runs/{run_id}/input``."""
        return json_response(200, self._run(request).input_wire())

    async def result(self, request: Request, body: bytes | None) -> Response:
        """``GET /v1/tasks/runs/{run_id}/result?timeout=N``: hold until the run ends."""
        emulator = self.emulator
        run = self._run(request, MSG_RESULT_404)
        timeout = _number_query(request, "timeout", 600, integer=True)
        assert timeout is not None
        hold = (
            timeout if emulator.max_result_hold is None else min(timeout, emulator.max_result_hold)
        )
        if emulator._faults.take_hold_408(run.run_id):
            await asyncio.sleep(hold)
            raise ApiError(408, MSG_408)
        if not await emulator.wait_terminal(run, hold):
            raise ApiError(408, MSG_408)
        if run.final != "completed":
            raise ApiError(404, MSG_RESULT_404)
        return json_response(200, emulator.result_wire(run))

    async def events(self, request: Request, body: bytes | None) -> Response:
        """``GET /v1[beta]/tasks/runs/{run_id}/events``: the run's SSE stream."""
        run = self._run(request)
        return StreamingResponse(
            self.emulator.run_events(run), media_type="text/event-stream", headers=_SSE_HEADERS
        )

    # --- groups ------------------------------------------------------------------------------

    def _group(self, request: Request) -> StoredGroup:
        group = self.emulator.groups.get(request.path_params["taskgroup_id"])
        if group is None:
            raise ApiError(404, MSG_GROUP_404)
        self.emulator.settle_group(group)
        return group

    async def group_create(self, request: Request, body: bytes | None) -> Response:
        """``POST /v1[beta]/tasks/groups``: 200 with the empty group."""
        data = parse_json(body) if body and body.strip() else {}
        if not isinstance(data, dict):
            raise ValidationFailed(
                [{"loc": ["body"], "msg": "Expected a JSON object.", "type": "model_type"}]
            )
        errors: list[dict[str, Any]] = []
        metadata = data.get("metadata")
        check_metadata(metadata, ("body", "metadata"), errors)
        if errors:
            raise ValidationFailed(errors)
        return json_response(200, self.emulator.create_group(metadata).to_wire())

    async def group_retrieve(self, request: Request, body: bytes | None) -> Response:
        """``GET /v1[beta]/tasks/groups/{id}``."""
        return json_response(200, self._group(request).to_wire())

    async def group_add(self, request: Request, body: bytes | None) -> Response:
        """``POST /v1[beta]/tasks/groups/{id}/runs``: add up to 1,000 runs."""
        group = self._group(request)
        requests = parse_group_runs(parse_json(body or b""), self.emulator._specs)
        run_cursor = str(len(group.run_ids)) if group.run_ids else None
        event_cursor = str(len(group.log)) if group.log else None
        runs = self.emulator.admit_runs(requests, endpoint="group_add_runs", body=body, group=group)
        return json_response(
            200,
            {
                "status": group.status_wire(),
                "run_ids": [r.run_id for r in runs],
                "run_cursor": run_cursor,
                "event_cursor": event_cursor,
            },
        )

    async def group_runs(self, request: Request, body: bytes | None) -> Response:
        """``GET .../groups/{id}/runs``: an SSE snapshot of the group's runs."""
        group = self._group(request)
        status = request.query_params.get("status")
        if status is not None and status not in RUN_STATUSES:
            raise ValidationFailed(
                [_query_error("status", f"Use one of: {', '.join(RUN_STATUSES)}.", "enum")]
            )
        events = self.emulator.group_runs_events(
            group,
            after=_cursor_query(request, len(group.run_ids)),
            status=status,
            include_input=_bool_query(request, "include_input"),
            include_output=_bool_query(request, "include_output"),
        )
        return StreamingResponse(
            _aiter(events), media_type="text/event-stream", headers=_SSE_HEADERS
        )

    async def group_events(self, request: Request, body: bytes | None) -> Response:
        """``GET .../groups/{id}/events``: group status and run ends, resumable."""
        group = self._group(request)
        stream = self.emulator.group_events(
            group,
            after=_cursor_query(request, len(group.log)),
            timeout=_number_query(request, "timeout", None),
        )
        return StreamingResponse(stream, media_type="text/event-stream", headers=_SSE_HEADERS)

    async def group_run(self, request: Request, body: bytes | None) -> Response:
        """``GET .../groups/{id}/runs/{run_id}``: one of the group's runs."""
        group = self._group(request)
        run = self._run(request)
        if run.taskgroup_id != group.taskgroup_id:
            raise ApiError(404, MSG_RUN_404)
        return json_response(200, run.to_wire())

    # --- control API -------------------------------------------------------------------------

    def _control_routes(self) -> Iterable[BaseRoute]:
        control = self._control
        yield Route("/_emulator/health", control(self._health), methods=["GET"])
        yield Route("/_emulator/counts", control(self._counts), methods=["GET"])
        yield Route("/_emulator/faults", control(self._faults), methods=["GET", "POST", "DELETE"])
        yield Route("/_emulator/fixtures", control(self._add_fixture), methods=["POST"])
        yield Route("/_emulator/reset", control(self._reset), methods=["POST"])
        yield Route("/_emulator/webhooks", control(self._webhooks), methods=["GET"])

    def _control(
        self, handler: Callable[[Request, Any], Response]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not self.emulator.control_api:
                return error_response(
                    404, f"Not found: no such endpoint {request.method} {request.url.path}"
                )
            try:
                data = None
                if request.method == "POST":
                    raw = await self._read_body(request)
                    data = parse_json(raw) if raw.strip() else {}
                return handler(request, data)
            except ApiError as exc:
                return error_response(exc.status, exc.message, exc.detail)
            except (ValueError, TypeError) as exc:
                return error_response(422, str(exc))

        return endpoint

    def _health(self, request: Request, data: Any) -> Response:
        emulator = self.emulator
        return json_response(
            200, {"status": "ok", "runs": len(emulator.runs), "groups": len(emulator.groups)}
        )

    def _counts(self, request: Request, data: Any) -> Response:
        return json_response(200, {"counts": dict(self.emulator.request_counts)})

    def _faults(self, request: Request, data: Any) -> Response:
        emulator = self.emulator
        if request.method == "DELETE":
            emulator.clear_faults()
        elif request.method == "POST":
            if isinstance(data, dict) and set(data) == {"spec"} and isinstance(data["spec"], str):
                emulator.add_fault(data["spec"])
            elif isinstance(data, dict):
                emulator.add_fault(Fault.from_dict(data))
            else:
                raise ValueError('Send a fault object, or {"spec": "create:429"}.')
            return json_response(201, {"faults": [f.to_dict() for f in emulator.faults]})
        return json_response(200, {"faults": [f.to_dict() for f in emulator.faults]})

    def _add_fixture(self, request: Request, data: Any) -> Response:
        if not isinstance(data, dict) or ("input" not in data and "inputs" not in data):
            raise ValueError('Send {"input": ..., "output": ..., "basis": [...]}.')
        inputs = data["inputs"] if "inputs" in data else [data["input"]]
        options = {k: data.get(k) for k in ("processor", "description_contains", "output_schema")}
        fixture = make_fixture(data.get("output"), data.get("basis"), **options)
        self.emulator.add_fixture(
            check_inputs(inputs), fixture.output, data.get("basis"), **options
        )
        return json_response(201, {"added": len(inputs)})

    def _reset(self, request: Request, data: Any) -> Response:
        self.emulator.reset()
        return json_response(200, {"status": "reset"})

    def _webhooks(self, request: Request, data: Any) -> Response:
        deliveries = [
            {
                "run_id": d.run_id,
                "url": d.url,
                "webhook_id": d.webhook_id,
                "attempt": d.attempt,
                "status_code": d.status_code,
                "error": d.error,
            }
            for d in self.emulator.webhook_deliveries
        ]
        return json_response(200, {"deliveries": deliveries})


# --- helpers ------------------------------------------------------------------------------------


async def _apply_fault(fault: Fault) -> Response | None:
    """Carry out a fault: the answer to send instead, or None to carry on (after a delay, or
    to truncate the real answer for ``drop="mid"``)."""
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.drop == "before":
        raise DropConnection()
    if fault.status is None:
        return None
    headers = {}
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = f"{fault.retry_after_ms:g}"
    message = fault.message or STATUS_MESSAGES.get(fault.status, "Emulated error")
    return error_response(fault.status, message, None, headers)


class _Truncated(Response):
    """Sends a response's status, headers and first part, then drops the connection."""

    def __init__(self, inner: Response) -> None:
        # No super().__init__(): this only wraps a response that is already built.
        self.inner = inner
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        inner = self.inner
        await send(
            {
                "type": "http.response.start",
                "status": inner.status_code,
                "headers": inner.raw_headers,
            }
        )
        if isinstance(inner, StreamingResponse):
            async for chunk in inner.body_iterator:
                first = chunk if isinstance(chunk, bytes) else str(chunk).encode()
                await send({"type": "http.response.body", "body": first, "more_body": True})
                break
        else:
            part = bytes(inner.body[: max(len(inner.body) // 2, 1)])
            await send({"type": "http.response.body", "body": part, "more_body": True})
        raise DropConnection("Server closed the connection in the middle of the response.")


async def _aiter(items: Iterable[bytes], chunk: int = 1 << 16) -> AsyncIterator[bytes]:
    # A snapshot can hold 100,000 events: sending them in ~64 KB chunks instead of one ASGI
    # message each cuts the server's per-message overhead, and lets other requests in between.
    pending: list[bytes] = []
    size = 0
    for item in items:
        pending.append(item)
        size += len(item)
        if size >= chunk:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _query_error(name: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["query", name], "msg": msg, "type": kind}


def _number_query(
    request: Request, name: str, default: float | None, *, integer: bool = False
) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ValidationFailed(
            [
                _query_error(
                    name,
                    f"{name} must be {kind} of seconds, not {raw!r}.",
                    "int_parsing" if integer else "float_parsing",
                )
            ]
        ) from None
    if not value >= 0 or value == float("inf"):
        raise ValidationFailed(
            [
                _query_error(
                    name, f"{name} must be a finite number of seconds >= 0.", "greater_than_equal"
                )
            ]
        )
    return value


def _bool_query(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValidationFailed([_query_error(name, f"{name} must be true or false.", "bool_parsing")])


def _cursor_query(request: Request, end: int) -> int:
    raw = request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return 0
    if not raw.isdigit():
        raise ValidationFailed(
            [
                _query_error(
                    "last_event_id",
                    f"{raw!r} is not an event id from this stream; pass an event_id it "
                    "sent (or a cursor from adding runs).",
                    "value_error",
                )
            ]
        )
    return min(int(raw), end)
