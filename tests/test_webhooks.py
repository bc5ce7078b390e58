"""Webhook signatures: valid, rotated, tampered, stale and malformed deliveries."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from parallel_tools import WebhookVerificationError, sign_webhook, verify_webhook

SECRET = "whsec_test_secret"
BODY = json.dumps(
    {
        "timestamp": "2025-04-23T20:21:48.037943Z",
        "type": "task_run.status",
        "data": {
            "run_id": "trun_1",
            "status": "completed",
            "is_active": False,
            "processor": "base",
        },
    }
).encode()


def headers(body: bytes = BODY, ts: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "Webhook-Id": "whevent_abc123",
        "Webhook-Timestamp": str(ts),
        "Webhook-Signature": sign_webhook(
            body, webhook_id="whevent_abc123", timestamp=ts, secret=secret
        ),
    }


def test_a_valid_delivery_is_parsed() -> None:
    event = verify_webhook(BODY, headers(), SECRET)
    assert event.type == "task_run.status"
    assert event.data.run_id == "trun_1" and event.data.status == "completed"
    assert event.webhook_id == "whevent_abc123"


def test_the_signature_is_base64_hmac_sha256_over_id_timestamp_body() -> None:
    import base64
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), b"id1.100." + BODY, hashlib.sha256).digest()
    assert sign_webhook(BODY, webhook_id="id1", timestamp=100, secret=SECRET) == (
        "v1," + base64.b64encode(digest).decode()
    )


def test_any_of_several_signatures_may_match_during_rotation() -> None:
    h = headers()
    old = sign_webhook(
        BODY, webhook_id="whevent_abc123", timestamp=int(h["Webhook-Timestamp"]), secret="old"
    )
    h["Webhook-Signature"] = f"{old} {h['Webhook-Signature']}"
    assert verify_webhook(BODY, h, SECRET).data.run_id == "trun_1"


@pytest.mark.parametrize(
    ("body", "make_headers", "match"),
    [
        (BODY + b" ", lambda: headers(), "No webhook signature matches"),
        (BODY, lambda: headers(secret="wrong"), "No webhook signature matches"),
        (BODY, lambda: headers(ts=int(time.time()) - 301), "away from now"),
        (BODY, lambda: headers(ts=int(time.time()) + 400), "away from now"),
        (BODY, lambda: {"webhook-id": "x"}, "Missing webhook header"),
        (BODY, lambda: {**headers(), "Webhook-Timestamp": "yesterday"}, "not a Unix time"),
    ],
    ids=["tampered", "wrong-secret", "stale", "future", "missing", "bad-timestamp"],
)
def test_invalid_deliveries_are_rejected(
    body: bytes, make_headers: Callable[[], dict[str, str]], match: str
) -> None:
    # Headers are built when the test runs, not at collection, so timestamps stay fresh.
    with pytest.raises(WebhookVerificationError, match=match):
        verify_webhook(body, make_headers(), SECRET)


def test_a_signed_body_that_is_not_an_event_is_rejected() -> None:
    body = b"not json"
    with pytest.raises(WebhookVerificationError, match="not a webhook event"):
        verify_webhook(body, headers(body), SECRET)


def test_tolerance_is_configurable() -> None:
    old = int(time.time()) - 1000
    assert verify_webhook(BODY, headers(ts=old), SECRET, tolerance=2000)
