"""Signing and verifying Parallel's webhook deliveries.

Parallel signs each delivery Standard-Webhooks style: `webhook-signature` holds one or more
space-separated `v1,<base64 HMAC-SHA256>` entries (several during a secret rotation), computed
with the account's webhook secret over `"{webhook-id}.{webhook-timestamp}.{raw body}"`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ._exceptions import WebhookVerificationError
from ._models import TaskRun, _Wire

__all__ = ["WebhookEvent", "sign_webhook", "verify_webhook"]


class WebhookEvent(_Wire):
    """A verified webhook delivery: `task_run.status` with the run (status only, no output).

    Attributes:
        webhook_id: The `webhook-id` header; deliveries can repeat, so use it to deduplicate.
    """

    type: str
    timestamp: str | None = None
    data: TaskRun
    webhook_id: str = ""


def sign_webhook(body: bytes | str, *, webhook_id: str, timestamp: int, secret: str) -> str:
    """Compute the `webhook-signature` value for a delivery (one `v1,` entry).

    Used by the emulator to sign what it sends, and by tests to build deliveries.
    """
    raw = body.encode() if isinstance(body, str) else body
    message = f"{webhook_id}.{timestamp}.".encode() + raw
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> WebhookEvent:
    """Check a webhook delivery's signature and age, then parse it.

    Args:
        body: The raw request body, exactly as received (not re-serialised JSON).
        headers: The request headers (any case).
        secret: The account's webhook secret from Parallel's platform settings.
        tolerance: How many seconds the `webhook-timestamp` may differ from now. Rejecting old
            deliveries stops an attacker from replaying a captured one.
        now: The current Unix time; for tests.

    Returns:
        The parsed event.

    Raises:
        WebhookVerificationError: a header is missing, the timestamp is stale or in the future,
            no signature matches, or the body is not a webhook event.
    """
    if not secret:
        raise WebhookVerificationError("No webhook secret given; pass the secret from Parallel.")
    lowered = {k.lower(): v for k, v in headers.items()}
    missing = [
        h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lowered.get(h)
    ]
    if missing:
        raise WebhookVerificationError(
            f"Missing webhook header(s): {', '.join(missing)}. Pass the request's headers as "
            "received; a proxy may be stripping them."
        )
    webhook_id = lowered["webhook-id"]
    try:
        timestamp = int(lowered["webhook-timestamp"])
    except ValueError:
        raise WebhookVerificationError(
            f"webhook-timestamp {lowered['webhook-timestamp']!r} is not a Unix time."
        ) from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"The webhook timestamp is {int(current - timestamp)} s away from now (tolerance "
            f"{tolerance:g} s). Reject it: it may be a replay, or this machine's clock is off."
        )
    expected = sign_webhook(body, webhook_id=webhook_id, timestamp=timestamp, secret=secret)
    candidates = lowered["webhook-signature"].split()
    # Check every entry without stopping early, so timing does not reveal which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        raise WebhookVerificationError(
            "No webhook signature matches. Check that the secret is the current one and that the "
            "body is the raw bytes received, not parsed and re-encoded JSON."
        )
    try:
        payload: Any = json.loads(body)
        return WebhookEvent.model_validate({**payload, "webhook_id": webhook_id})
    except (ValueError, TypeError, ValidationError) as exc:
        raise WebhookVerificationError(
            f"The webhook signature is valid but the body is not a webhook event: {exc}"
        ) from None
