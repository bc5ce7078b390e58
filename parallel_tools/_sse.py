"""Server-sent events: a line decoder and the mapping from raw events to typed ones.

The decoder follows the WHATWG algorithm with two deliberate differences from the official SDK's:
an event with no data is dropped instead of dispatched (a keep-alive comment after an `id:` line
must not produce an empty event), and a payload that is not JSON or whose `type` is unknown becomes
an `UnknownEvent` instead of being forced into the first member of a union.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ._models import (
    ErrorEvent,
    GroupEvent,
    ProgressMessageEvent,
    ProgressStatsEvent,
    RunEvent,
    RunStateEvent,
    TaskGroupStatusEvent,
    UnknownEvent,
)

__all__ = ["SSEDecoder", "ServerSentEvent", "parse_group_event", "parse_run_event"]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its `event:` name, joined `data:` lines and last `id:`."""

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns lines of an event stream into `ServerSentEvent`s.

    Feed it lines without their terminators; a blank line dispatches the pending event.
    `last_event_id` keeps the last `id:` seen, which is what a reconnect resumes from.
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._retry: int | None = None
        self._first = True
        self.last_event_id: str | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        """Process one line; return an event when the line completes one."""
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")  # a stream may start with a byte-order mark
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def flush(self) -> ServerSentEvent | None:
        """Dispatch an event left pending when the stream ended without a blank line."""
        return self._dispatch()

    def _dispatch(self) -> ServerSentEvent | None:
        event, data, retry = self._event, self._data, self._retry
        self._event, self._data, self._retry = "", [], None
        joined = "\n".join(data)
        if not joined:  # no data, or only empty `data:` lines: nothing to dispatch
            return None
        return ServerSentEvent(event or "message", joined, self.last_event_id, retry)


def _load(sse: ServerSentEvent) -> tuple[str, Any]:
    try:
        payload = json.loads(sse.data)
    except ValueError:
        return sse.event, None
    kind = payload.get("type") if isinstance(payload, dict) else None
    return (kind if isinstance(kind, str) else sse.event), payload


def _unknown(kind: str, payload: Any, sse: ServerSentEvent) -> UnknownEvent:
    return UnknownEvent(type=kind, data=payload, raw=sse.data, event_id=sse.id)


def parse_run_event(sse: ServerSentEvent) -> RunEvent:
    """Type one event of a run's stream; anything unrecognised becomes an `UnknownEvent`."""
    kind, payload = _load(sse)
    if not isinstance(payload, dict):
        return _unknown(kind, payload, sse)
    try:
        if kind == "task_run.state":
            return RunStateEvent.model_validate(payload)
        if kind.startswith("task_run.progress_msg."):
            return ProgressMessageEvent.model_validate(payload)
        if kind == "task_run.progress_stats":
            return ProgressStatsEvent.model_validate(payload)
        if kind == "error":
            return ErrorEvent.model_validate(payload)
    except ValidationError:
        pass
    return _unknown(kind, payload, sse)


def parse_group_event(sse: ServerSentEvent) -> GroupEvent:
    """Type one event of a group's stream; anything unrecognised becomes an `UnknownEvent`."""
    kind, payload = _load(sse)
    if not isinstance(payload, dict):
        return _unknown(kind, payload, sse)
    payload.setdefault("event_id", sse.id)
    try:
        if kind == "task_group_status":
            return TaskGroupStatusEvent.model_validate(payload)
        if kind == "task_run.state":
            return RunStateEvent.model_validate(payload)
        if kind == "error":
            return ErrorEvent.model_validate(payload)
    except ValidationError:
        pass
    return _unknown(kind, payload, sse)
