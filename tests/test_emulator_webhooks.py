"""Webhooks from the emulator: signed as documented, retried with backoff, never blocking."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from parallel_tools import WebhookVerificationError, verify_webhook
from parallel_tools.emulator import Emulator, EmulatorServer, Fault


class Receiver:
    """A real HTTP server collecting deliveries, answering with scripted statuses."""

    def __init__(self) -> None:
        self.deliveries: queue.Queue[tuple[float, dict[str, str], bytes]] = queue.Queue()
        self.statuses: list[int] = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.deliveries.put(
                    (time.time(), {k.lower(): v for k, v in self.headers.items()}, body)
                )
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/parallel"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def next(self, timeout: float = 5) -> tuple[float, dict[str, str], bytes]:
        return self.deliveries.get(timeout=timeout)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def create(api: httpx.Client, url: str, **body: Any) -> str:
    payload = {"input": "x", "processor": "lite", "webhook": {"url": url}, **body}
    response = api.post("/v1/tasks/runs", json=payload)
    assert response.status_code == 202
    run_id: str = response.json()["run_id"]
    return run_id


@pytest.mark.parallel_emulator(webhook_secret="whsec_from_the_platform")
def test_completion_is_delivered_signed(api: httpx.Client, receiver: Receiver) -> None:
    run_id = create(api, receiver.url, metadata={"job": "42"})
    _, headers, body = receiver.next()
    event = verify_webhook(body, headers, "whsec_from_the_platform")
    assert event.type == "task_run.status"
    assert event.webhook_id.startswith("whevent_")
    assert event.data.run_id == run_id
    assert (event.data.status, event.data.is_active) == ("completed", False)
    assert event.data.metadata == {"job": "42"}
    payload = json.loads(body)
    assert set(payload) == {"timestamp", "type", "data"}
    assert "output" not in payload["data"]  # status only; the output is fetched from /result
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, "whsec_some_other_secret")


def test_failures_are_delivered_too(
    api: httpx.Client, receiver: Receiver, parallel_emulator: EmulatorServer
) -> None:
    parallel_emulator.emulator.add_fault(Fault(fail_run="Could not finish."))
    run_id = create(api, receiver.url)
    _, headers, body = receiver.next()
    event = verify_webhook(body, headers, "whsec_test")
    assert (event.data.run_id, event.data.status) == (run_id, "failed")
    assert event.data.error is not None and event.data.error.message == "Could not finish."


@pytest.mark.parallel_emulator(webhook_backoff=100)  # 100 API seconds: 10 ms at this scale
def test_non_2xx_answers_are_retried_with_doubling_backoff(
    api: httpx.Client, receiver: Receiver, parallel_emulator: EmulatorServer
) -> None:
    receiver.statuses = [500, 503, 204]
    run_id = create(api, receiver.url)
    attempts = [receiver.next() for _ in range(3)]
    ids = {headers["webhook-id"] for _, headers, _ in attempts}
    assert len(ids) == 1  # the same event, so receivers can deduplicate
    for _, headers, body in attempts:
        verify_webhook(body, headers, "whsec_test")
    times = [at for at, _, _ in attempts]
    assert times[1] - times[0] >= 0.01
    assert times[2] - times[1] >= 0.02
    with pytest.raises(queue.Empty):
        receiver.next(timeout=0.1)
    log = [d for d in parallel_emulator.emulator.webhook_deliveries if d.run_id == run_id]
    assert [(d.attempt, d.status_code) for d in log] == [(1, 500), (2, 503), (3, 204)]
    listed = api.get("/_emulator/webhooks").json()["deliveries"]
    assert [d["status_code"] for d in listed] == [500, 503, 204]


def test_a_slow_receiver_blocks_nothing(api: httpx.Client, receiver: Receiver) -> None:
    receiver.delay = 1.0
    run_id = create(api, receiver.url)
    started = time.monotonic()
    assert api.get(f"/v1/tasks/runs/{run_id}/result").status_code == 200
    assert api.post("/v1/tasks/runs", json={"input": "y", "processor": "lite"}).status_code == 202
    assert time.monotonic() - started < 0.5
    receiver.next()


def test_group_runs_send_webhooks(api: httpx.Client, receiver: Receiver) -> None:
    group = api.post("/v1/tasks/groups", json={}).json()["taskgroup_id"]
    run = {"input": "x", "processor": "lite", "webhook": {"url": receiver.url}}
    added = api.post(f"/v1/tasks/groups/{group}/runs", json={"inputs": [run, run]}).json()
    delivered = {
        verify_webhook(b, h, "whsec_test").data.run_id
        for _, h, b in (receiver.next(), receiver.next())
    }
    assert delivered == set(added["run_ids"])


async def test_unreachable_receivers_are_given_up_after_the_last_attempt() -> None:
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    emulator = Emulator(
        time_scale=0, webhook_max_attempts=3, webhook_transport=httpx.MockTransport(refuse)
    )
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://emulator", headers={"x-api-key": "k"}
    ) as client:
        body = {"input": "x", "processor": "lite", "webhook": {"url": "https://hooks.example"}}
        run_id = (await client.post("/v1/tasks/runs", json=body)).json()["run_id"]
        await client.get(f"/v1/tasks/runs/{run_id}/result")
        await emulator.drain_webhooks()
    assert len(calls) == 3
    assert [d.error is not None and "refused" in d.error for d in emulator.webhook_deliveries] == [
        True,
        True,
        True,
    ]
