"""When to retry a request, and how long to wait first.

The policy differs for reads and for creates, because a create costs money:

* **Reads** (status, results, events, group queries) are retried on connection errors, timeouts,
  408, 429 and 5xx. A read can never start a second run.
* **Creates** (`POST /v1/tasks/runs`, adding runs to a group) are retried only when the server
  cannot have accepted the request: the connection was never established (refused, DNS, connect
  timeout, no free connection in the pool), or the server answered 429, or 503 with a
  `retry-after` header (it said "not now" before doing anything). After an ambiguous failure
  (the request was sent but the answer was lost: read timeout, dropped connection, 500, 502,
  504, 408, 503 without `retry-after`) the run may exist, so `RunMayExistError` is raised
  instead of paying twice.

Delays grow exponentially with jitter, and a server's `retry-after` / `retry-after-ms` is obeyed
(up to `max_retry_after`).
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from typing import Literal, TypeAlias

import httpx

__all__ = ["RequestKind", "RetryPolicy"]

RequestKind: TypeAlias = Literal["read", "create"]

# The request never left this machine: the server cannot have seen it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_RETRIABLE_READ_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attributes:
        max_retries: Retries after the first attempt (so `max_retries + 1` attempts in all).
            Attempts that fail after making progress (a long hold, a stream that delivered
            events) do not count, so long waits survive any number of dropped connections.
        initial_delay: The first backoff in seconds; each retry doubles it.
        max_delay: The longest backoff between two attempts.
        max_retry_after: The longest server-requested wait we obey; a longer `retry-after`
            ends retrying and the error reports it.
        jitter: Up to this fraction of each backoff is removed at random, so many clients
            failing together do not retry in lockstep.
        outage_patience: While waiting for a result, transient failures (dropped connections,
            5xx, 429) are retried for this many seconds in a row rather than `max_retries`
            times, so a wait of hours rides out a short outage.
    """

    max_retries: int = 4
    initial_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    jitter: float = 0.25
    outage_patience: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0-based), with jitter."""
        delay = min(self.initial_delay * 2.0**attempt, self.max_delay)
        return delay * (1 - self.jitter * random.random())

    def should_retry_error(self, exc: Exception, kind: RequestKind) -> bool:
        """Whether a transport error is worth another attempt of this kind of request."""
        if kind == "create":
            return isinstance(exc, _NOT_SENT)
        return isinstance(exc, httpx.TransportError)

    def should_retry_status(self, response: httpx.Response, kind: RequestKind) -> bool:
        """Whether an error status is worth another attempt of this kind of request."""
        status = response.status_code
        if kind == "create":
            return status == 429 or (status == 503 and retry_after(response) is not None)
        return status in _RETRIABLE_READ_STATUSES

    def delay_for(self, response: httpx.Response | None, attempt: int) -> float | None:
        """Seconds to wait before the next attempt; None if the server asks for too long.

        A server's `retry-after` is a floor, not a licence to hammer: a `retry-after: 0`
        repeated forever still gets our backoff.
        """
        requested = retry_after(response) if response is not None else None
        if requested is None:
            return self.backoff(attempt)
        if requested > self.max_retry_after:
            return None
        return max(requested, self.backoff(attempt))


def retry_after(response: httpx.Response) -> float | None:
    """The wait a response asks for, from `retry-after-ms` or `retry-after` (seconds or date)."""
    headers = response.headers
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000
            if math.isfinite(value):
                return max(value, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
        return max(value, 0.0) if math.isfinite(value) else None
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return max(float(email.utils.mktime_tz(parsed)) - time.time(), 0.0)


def is_ambiguous_create_failure(error: Exception | httpx.Response) -> bool:
    """True when a failed create may still have been accepted by the server."""
    if isinstance(error, httpx.Response):
        if error.status_code == 503 and retry_after(error) is not None:
            return False  # "come back later": refused before doing anything
        return error.status_code == 408 or error.status_code >= 500
    return isinstance(error, httpx.TransportError) and not isinstance(error, _NOT_SENT)
