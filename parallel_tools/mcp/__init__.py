"""An MCP server that gives Claude, Cursor, VS Code and every MCP client cited web research.

Install the extra (`pip install "parallel-tools[mcp]"`) and start it with `parallel-tools mcp`
(stdio) or `parallel-tools mcp --transport http`. In Python::

    from parallel_tools.mcp import ServerSettings, create_server

    server = create_server([company_profile], settings=ServerSettings(processors=("base",)))
    server.run()  # stdio

Importing this package is cheap: the MCP SDK is only imported when `create_server`,
`create_http_app` or a serving function is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._http import create_http_app, serve_http
    from ._loading import load_tasks
    from ._manifest import EnrichmentResult, EnrichmentRow, ResearchResult, RowAnswer
    from ._server import create_server
    from ._settings import HttpSettings, ServerSettings
    from ._stdio import serve_stdio

__all__ = [
    "EnrichmentResult",
    "EnrichmentRow",
    "HttpSettings",
    "ResearchResult",
    "RowAnswer",
    "ServerSettings",
    "create_http_app",
    "create_server",
    "load_tasks",
    "serve_http",
    "serve_stdio",
]

_HOMES = {
    "EnrichmentResult": "._manifest",
    "EnrichmentRow": "._manifest",
    "ResearchResult": "._manifest",
    "RowAnswer": "._manifest",
    "HttpSettings": "._settings",
    "ServerSettings": "._settings",
    "create_http_app": "._http",
    "serve_http": "._http",
    "create_server": "._server",
    "load_tasks": "._loading",
    "serve_stdio": "._stdio",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__, globals())
