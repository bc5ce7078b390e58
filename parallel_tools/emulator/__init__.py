"""A local emulator of Parallel's Task API, for offline development and tests.

It is a real HTTP server speaking the Task API's wire format, so the official ``parallel-web``
SDK, curl and parallel-tools' own client can be pointed at it unchanged. Answers are emulated
(every run carries a warning saying so) and runs finish in milliseconds.

Start it from the command line (``parallel-tools emulator --port 8787``), in a test with the
``parallel_emulator`` pytest fixture (see :mod:`parallel_tools.testing`), or in-process::

    from parallel_tools.emulator import Emulator, Fault

    emu = Emulator(time_scale=0.001)
    with emu.serve(port=0) as server:            # uvicorn in a background thread
        client = Parallel(api_key=server.api_key, base_url=server.base_url)
        emu.add_fault(Fault(endpoint="create", status=429, retry_after=1.0, times=2))
        ...
        assert emu.request_counts["create"] == 3

``create_app(emu)`` (or ``emu.app``) is the ASGI application, usable with
``httpx.ASGITransport``; note that transport buffers whole responses, so event streams are
only seen once they end.

Endpoints and their names (used by faults and ``Emulator.request_counts``):

=================  ==========================================================================
``create``         ``POST /v1/tasks/runs``
``retrieve``       ``GET /v1/tasks/runs/{run_id}``
``input``          ``GET /v1/tasks/runs/{run_id}/input``
``result``         ``GET /v1/tasks/runs/{run_id}/result?timeout=N``
``events``         ``GET /v1/tasks/runs/{run_id}/events`` and ``/v1beta/...``
``group_create``   ``POST /v1/tasks/groups`` (and ``/v1beta``, as for all group endpoints)
``group_retrieve`` ``GET /v1/tasks/groups/{taskgroup_id}``
``group_add_runs`` ``POST /v1/tasks/groups/{taskgroup_id}/runs``
``group_runs``     ``GET /v1/tasks/groups/{taskgroup_id}/runs`` (SSE snapshot)
``group_events``   ``GET /v1/tasks/groups/{taskgroup_id}/events`` (SSE, resumable)
``group_run``      ``GET /v1/tasks/groups/{taskgroup_id}/runs/{run_id}``
``unknown``        any other path (counted only; answered 404)
=================  ==========================================================================

Behaviour worth knowing:

* Auth: ``x-api-key`` must be non-empty (or one of ``api_keys``), else 401.
* Validation: unknown processor → 403; bad JSON, wrong types, invalid task spec, size limits
  → 422 with ``error.detail = {"errors": [{"loc", "msg", "type"}, ...]}``. Group endpoints
  answer 422 as FastAPI does, ``{"detail": [...]}``, which is what Parallel's OpenAPI spec
  declares for them. Bodies over ``max_body_bytes`` (8 MiB) → 413. Schema warnings are
  attached to the run as ``spec_validation_warning``.
* ``previous_interaction_id`` is accepted and stored; ids the emulator does not know are not
  an error, because real interaction ids also come from other services (the Chat API) and
  from earlier emulator sessions.
* Durations: a processor's documented latency range times ``time_scale``; the first tenth
  is ``queued``, the rest ``running``. ``/result`` holds until the run ends (woken the moment
  it does), or answers 408 after ``timeout`` (capped by ``max_result_hold``).
* Event streams never send ``id:`` lines (cursors are in the JSON ``event_id``), so their
  ``: keepalive`` comments are safe for the official SDK.
* Group ``event_id`` cursors are decimal strings: positions in the group's run list (``/runs``)
  or event log (``/events``).

Control API (unless ``control_api=False`` / ``--no-control-api``; no API key needed):
``GET /_emulator/health``, ``GET /_emulator/counts``, ``GET|POST|DELETE /_emulator/faults``
(POST a :class:`Fault` as JSON or ``{"spec": "create:429:times=2"}``), ``POST
/_emulator/fixtures`` (``{"input", "output", "basis"}``), ``POST /_emulator/reset``,
``GET /_emulator/webhooks``.

This package imports nothing heavy until a name is used: the CLI imports it while parsing
arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._app import DropConnection, EmulatorApp, create_app
    from ._emulator import DEFAULT_API_KEY, Emulator, WebhookDelivery
    from ._faults import ENDPOINTS, Fault
    from ._server import EmulatorServer
    from ._state import StoredGroup, StoredRun

__all__ = [
    "DEFAULT_API_KEY",
    "ENDPOINTS",
    "DropConnection",
    "Emulator",
    "EmulatorApp",
    "EmulatorServer",
    "Fault",
    "StoredGroup",
    "StoredRun",
    "WebhookDelivery",
    "create_app",
]

_LAZY: dict[str, str] = {
    "DEFAULT_API_KEY": "._emulator",
    "ENDPOINTS": "._faults",
    "DropConnection": "._app",
    "Emulator": "._emulator",
    "EmulatorApp": "._app",
    "EmulatorServer": "._server",
    "Fault": "._faults",
    "StoredGroup": "._state",
    "StoredRun": "._state",
    "WebhookDelivery": "._emulator",
    "create_app": "._app",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__, globals())
