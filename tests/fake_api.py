"""A scriptable stand-in for the Task API on `httpx.MockTransport`, for edge cases that a real
server makes hard to stage (a connection dropped at an exact byte, a 503 without retry-after)."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).parent / "fixtures"

Handler = Callable[[httpx.Request], httpx.Response]


def load_fixture(name: str) -> dict[str, Any]:
    """A JSON fixture from tests/fixtures."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def error_body(message: str, ref_id: str = "ref-123", detail: Any = None) -> dict[str, Any]:
    """The API's ErrorResponse shape."""
    return {"type": "error", "error": {"ref_id": ref_id, "message": message, "detail": detail}}


def run_json(run_id: str = "trun_1", status: str = "queued", **extra: Any) -> dict[str, Any]:
    """A TaskRun as the API sends it."""
    active = status in ("queued", "running", "cancelling")
    return {
        "run_id": run_id,
        "interaction_id": run_id,
        "status": status,
        "is_active": active,
        "processor": "base",
        "metadata": None,
        "created_at": "2025-04-23T20:21:48.037943Z",
        "modified_at": "2025-04-23T20:21:48.037943Z",
        **extra,
    }


def text_result(run_id: str = "trun_1", content: str = "10-1945") -> dict[str, Any]:
    """A completed text TaskRunResult."""
    return {
        "run": run_json(run_id, "completed"),
        "output": {
            "type": "text",
            "content": content,
            "basis": [
                {
                    "field": "output",
                    "citations": [{"url": "https://example.org/a", "title": "A", "excerpts": []}],
                    "reasoning": "Because.",
                    "confidence": "high",
                }
            ],
        },
    }


def sse(*events: dict[str, Any], ids: bool = False) -> bytes:
    """An SSE body from JSON events, optionally with `id:` lines."""
    out = []
    for i, event in enumerate(events):
        head = f"id: {i + 1}\n" if ids else ""
        out.append(f"{head}event: {event['type']}\ndata: {json.dumps(event)}\n\n")
    return "".join(out).encode()


class DroppingStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that sends some bytes and then fails like a dropped connection."""

    def __init__(self, head: bytes, error: Exception | None = None) -> None:
        self.head = head
        self.error = error or httpx.RemoteProtocolError("peer closed connection")

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        raise self.error

    async def __aiter__(self) -> Any:
        yield self.head
        raise self.error


class FakeAPI:
    """Routes requests to handlers by method and path regex, counting each route's requests.

    A handler may be a response, a callable taking the request, or a list of either, consumed
    one per request (the last one repeats). Raising an exception from a callable simulates a
    transport failure.
    """

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], str, list[Any]]] = []
        self.counts: Counter[str] = Counter()
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def on(self, method: str, pattern: str, *responses: Any, name: str | None = None) -> None:
        """Register responses for requests matching `method` and the path regex."""
        self.routes.insert(
            0, (method, re.compile(f"^{pattern}$"), name or pattern, list(responses))
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            for method, pattern, name, responses in self.routes:
                match = pattern.match(request.url.path)
                if method == request.method and match:
                    self.counts[name] += 1
                    item = responses.pop(0) if len(responses) > 1 else responses[0]
                    break
            else:
                return httpx.Response(404, json=error_body("Not found"))
        if callable(item):
            result: httpx.Response = item(request)
            return result
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, httpx.Response):
            return httpx.Response(item.status_code, headers=item.headers, content=item.content)
        raise TypeError(item)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)
