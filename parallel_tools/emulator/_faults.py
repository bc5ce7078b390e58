"""Scripted faults: make the emulator fail the way a real network and API fail.

A :class:`Fault` names an endpoint (see the package docstring for the names), what goes wrong,
and how many matching requests it affects. The same fault can be written in Python, on the
command line (``--fault``) and over HTTP (``POST /_emulator/faults``); :meth:`Fault.parse`
reads the compact text form::

    ENDPOINT:ACTION[:OPTION]...

    create:429:times=2:retry_after=1      two creates answer 429 with retry-after: 1
    result:503                            one /result answers 503
    create:500:after_accept               the run is stored, then the create answers 500
    create:drop_before                    the connection closes before any response
    create:drop_before:after_accept       the run is stored, then the connection closes
    events:drop_mid                       headers and part of the body, then a closed connection
    retrieve:delay=2                      answer two seconds late
    create:fail_run=Upstream timeout      the next run ends as failed with that error message
    result:hold_408:times=0               every /result holds for its timeout, then answers 408
    *:502:match=trun_0123...              any request about that run answers 502

Actions: an HTTP status (400-599), ``drop_before``, ``drop_mid``, ``fail_run[=MESSAGE]``,
``hold_408``, or ``delay=SECONDS`` on its own. Options: ``times=N`` (default 1; 0 means
forever), ``delay=SECONDS`` (also before a status or drop), ``retry_after=SECONDS``,
``retry_after_ms=MS``, ``message=TEXT``, ``match=TEXT``, ``after_accept``. A JSON object with
the field names of :class:`Fault` is accepted too, which is the way to write a message that
contains a colon.

This module is imported while the command line is parsed, so it imports nothing heavy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final, Literal

__all__ = ["ENDPOINTS", "Fault", "FaultSet"]

ENDPOINTS: Final[tuple[str, ...]] = (
    "create",
    "retrieve",
    "input",
    "result",
    "events",
    "group_create",
    "group_retrieve",
    "group_add_runs",
    "group_runs",
    "group_events",
    "group_run",
)
"""Endpoint names used by faults and by ``Emulator.request_counts``."""

# Endpoints whose success stores something: only these have an "after accept" moment.
ACCEPTING_ENDPOINTS: Final = frozenset({"create", "group_create", "group_add_runs"})
# Endpoints that create runs, where `fail_run` applies.
RUN_CREATING_ENDPOINTS: Final = frozenset({"create", "group_add_runs"})
DEFAULT_FAIL_MESSAGE: Final = (
    "Emulated failure: a fault injected into the emulator failed this run."
)

DropMode = Literal["before", "mid"]


@dataclass(slots=True)
class Fault:
    """One scripted failure.

    Attributes:
        endpoint: An endpoint name from :data:`ENDPOINTS`, or ``"*"`` for any endpoint.
        status: Answer with this HTTP status and an ``ErrorResponse`` body.
        retry_after: Seconds to send in ``retry-after`` (with ``status``).
        retry_after_ms: Milliseconds to send in ``retry-after-ms`` (with ``status``).
        message: The error message; defaults to the API's message for ``status``.
        delay: Seconds to wait before answering (alone: a slow but correct answer).
        drop: ``"before"`` closes the connection without answering (the request was received);
            ``"mid"`` does the work, sends the status line, headers and part of the body (for an
            event stream: its first event), then closes.
        after_accept: For ``create``, ``group_create`` and ``group_add_runs``: do the work
            (store the run or group) first, then fail the response. Without it, a status or
            ``drop="before"`` fault stores nothing (``drop="mid"`` always does the work).
        fail_run: Runs created while this fault is active end as ``failed`` with this error
            message; ``times`` counts runs, not requests.
        hold_408: ``/result`` holds for its full timeout, then answers 408, even if the run
            has completed.
        times: How many matching requests (or runs, for ``fail_run``) it affects; ``0`` or
            None means every one.
        match: Only requests about this run or group id (or, for creating endpoints, whose
            body contains this text).
    """

    endpoint: str = "*"
    status: int | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    message: str | None = None
    delay: float = 0.0
    drop: DropMode | None = None
    after_accept: bool = False
    fail_run: str | None = None
    hold_408: bool = False
    times: int | None = 1
    match: str | None = None
    hits: int = field(default=0, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.endpoint != "*" and self.endpoint not in ENDPOINTS:
            raise ValueError(
                f"Unknown endpoint {self.endpoint!r}; use '*' or one of: {', '.join(ENDPOINTS)}."
            )
        if self.times is not None and self.times < 0:
            raise ValueError("times must be a positive count, or 0/None for every request.")
        if self.times == 0:
            self.times = None
        if self.delay < 0:
            raise ValueError("delay must not be negative.")
        if self.fail_run is not None and not self.fail_run:
            self.fail_run = DEFAULT_FAIL_MESSAGE
        actions = [
            name
            for name, on in (
                ("status", self.status is not None),
                ("drop", self.drop is not None),
                ("fail_run", self.fail_run is not None),
                ("hold_408", self.hold_408),
            )
            if on
        ]
        if len(actions) > 1:
            raise ValueError(f"A fault does one thing; this one sets {' and '.join(actions)}.")
        if not actions and not self.delay:
            raise ValueError("A fault needs an action: status, drop, fail_run, hold_408 or delay.")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), not {self.status}.")
        if self.drop not in (None, "before", "mid"):
            raise ValueError(f"drop must be 'before' or 'mid', not {self.drop!r}.")
        if (self.retry_after is not None or self.retry_after_ms is not None) and (
            self.status is None
        ):
            raise ValueError("retry_after and retry_after_ms only go with a status.")
        if self.after_accept:
            if self.endpoint not in ACCEPTING_ENDPOINTS:
                raise ValueError(
                    "after_accept needs endpoint 'create', 'group_create' or 'group_add_runs'."
                )
            if self.status is None and self.drop is None:
                raise ValueError("after_accept goes with a status or a drop.")
        if self.fail_run is not None and self.endpoint not in ("*", *RUN_CREATING_ENDPOINTS):
            raise ValueError(
                "fail_run applies to the run-creating endpoints 'create' and "
                "'group_add_runs' (or '*')."
            )
        if self.hold_408 and self.endpoint not in ("*", "result"):
            raise ValueError("hold_408 applies to the 'result' endpoint.")

    @property
    def kind(self) -> Literal["status", "drop", "fail_run", "hold_408", "delay"]:
        """What the fault does (a ``delay`` may also precede a ``status`` or ``drop``)."""
        if self.status is not None:
            return "status"
        if self.drop is not None:
            return "drop"
        if self.fail_run is not None:
            return "fail_run"
        return "hold_408" if self.hold_408 else "delay"

    @property
    def exhausted(self) -> bool:
        """Whether the fault has affected as many requests as ``times`` allows."""
        return self.times is not None and self.hits >= self.times

    def matches(self, endpoint: str, idents: tuple[str, ...], body: bytes | None) -> bool:
        """Whether a request to ``endpoint`` about ``idents`` (with ``body``) is affected."""
        if self.endpoint != "*" and self.endpoint != endpoint:
            return False
        if self.match is None:
            return True
        if self.match in idents:
            return True
        return (
            endpoint in RUN_CREATING_ENDPOINTS and body is not None and self.match.encode() in body
        )

    def to_dict(self) -> dict[str, Any]:
        """The fault as JSON-ready data (what ``GET /_emulator/faults`` lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from :meth:`to_dict` data (``hits`` is ignored).

        Raises:
            ValueError: unknown keys or invalid values.
        """
        allowed = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(data) - allowed - {"hits"})
        if unknown:
            raise ValueError(
                f"Unknown fault field(s): {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(allowed))}."
            )
        try:
            return cls(**{k: v for k, v in data.items() if k in allowed})
        except TypeError as exc:
            raise ValueError(f"Invalid fault: {exc}") from None

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Read the text form (``create:429:times=2``) or a JSON object; see the module docstring.

        Raises:
            ValueError: the spec cannot be read; the message shows the syntax.
        """
        text = spec.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"Fault JSON is not valid: {exc}") from None
            if not isinstance(data, dict):
                raise ValueError("Fault JSON must be an object.")
            return cls.from_dict(data)
        endpoint, _, rest = text.partition(":")
        if not endpoint or not rest:
            raise ValueError(_syntax_error(spec, "expected ENDPOINT:ACTION"))
        values: dict[str, Any] = {"endpoint": endpoint}
        for token in rest.split(":"):
            key, has_value, value = token.partition("=")
            key = key.strip()
            try:
                if key.isdigit() and not has_value:
                    values["status"] = int(key)
                elif key in ("drop_before", "drop_mid") and not has_value:
                    values["drop"] = key.removeprefix("drop_")
                elif key in ("hold_408", "after_accept") and not has_value:
                    values[key] = True
                elif key == "fail_run":
                    values["fail_run"] = value if has_value else ""
                elif key in ("delay", "retry_after", "retry_after_ms") and has_value:
                    values[key] = float(value)
                elif key in ("times", "status") and has_value:
                    values[key] = int(value)
                elif key in ("message", "match") and has_value:
                    values[key] = value
                else:
                    raise ValueError(f"unknown part {token!r}")
            except ValueError as exc:
                raise ValueError(_syntax_error(spec, str(exc))) from None
        return cls(**values)


def _syntax_error(spec: str, problem: str) -> str:
    return (
        f"Cannot read fault {spec!r}: {problem}. Write ENDPOINT:ACTION[:OPTION]..., e.g. "
        "'create:429:times=2:retry_after=1', 'result:hold_408', 'create:drop_before:after_accept',"
        " 'create:fail_run=Boom'. Endpoints: * or " + ", ".join(ENDPOINTS) + "."
    )


class FaultSet:
    """The active faults, consulted in the order they were added.

    Thread-safe: tests add faults from their own thread while the server consumes them.
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        """Activate a fault and return it."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults = []

    def active(self) -> list[Fault]:
        """The faults that can still fire."""
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    def take(
        self, endpoint: str, idents: tuple[str, ...], body: bytes | None, *, after_accept: bool
    ) -> Fault | None:
        """Consume and return the first HTTP-level fault for this request, if any.

        ``after_accept`` selects the faults that fire once the request's work is done.
        """
        return self._take(
            lambda f: (
                f.kind in ("status", "drop", "delay")
                and f.after_accept == after_accept
                and f.matches(endpoint, idents, body)
            )
        )

    def take_fail_run(self, endpoint: str, body: bytes | None) -> str | None:
        """Consume a ``fail_run`` fault for one new run; returns its error message."""
        fault = self._take(lambda f: f.kind == "fail_run" and f.matches(endpoint, (), body))
        return None if fault is None else fault.fail_run

    def take_hold_408(self, run_id: str) -> bool:
        """Consume a ``hold_408`` fault for a ``/result`` request about ``run_id``."""
        return (
            self._take(lambda f: f.kind == "hold_408" and f.matches("result", (run_id,), None))
            is not None
        )

    def _take(self, wanted: Callable[[Fault], bool]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if not fault.exhausted and wanted(fault):
                    fault.hits += 1
                    return fault
            if any(f.exhausted for f in self._faults):
                self._faults = [f for f in self._faults if not f.exhausted]
        return None
