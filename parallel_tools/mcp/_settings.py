"""Operator settings for the MCP server: what the model may spend, how long a call may wait.

Everything here is plain Python (no MCP SDK), so the command line can read and check settings
before the SDK is imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, cast

from .._config import DEFAULT_PROCESSOR, PROCESSORS, get_processor

__all__ = [
    "DEFAULT_ALLOWED_TIERS",
    "MAX_WAIT_CAP",
    "HttpSettings",
    "ServerSettings",
    "expand_processors",
]

DEFAULT_ALLOWED_TIERS: Final = ("lite", "base", "core")
"""Tiers a server allows unless the operator says otherwise: nothing above `core` ($0.025/run)."""

MAX_WAIT_CAP: Final = 45.0
"""No tool call waits longer than this: Claude Desktop cuts stdio calls at 60 s."""

MAX_PROGRESS_INTERVAL: Final = 10.0
"""Progress notifications come at least this often while a call waits."""

MAX_OUTPUT_TOKENS_CAP: Final = 20_000

ENV_PREFIX: Final = "PARALLEL_MCP_"


def expand_processors(names: Iterable[str]) -> tuple[str, ...]:
    """Expand processor names into the allowed set, in catalogue order.

    A tier name (`core`) allows its `-fast` twin too, which costs the same; a `-fast` name
    allows only itself.

    Raises:
        ValueError: an unknown processor name (the message lists the known ones).
    """
    wanted: set[str] = set()
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        processor = get_processor(name)
        wanted.add(processor.name)
        if not processor.is_fast:
            wanted.add(f"{processor.name}-fast")
    return tuple(name for name in PROCESSORS if name in wanted)


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@dataclass(frozen=True)
class ServerSettings:
    """What the server lets the model do, set by whoever runs it.

    Attributes:
        processors: The processors the model may use. The tools' schemas list only these and
            the server refuses any other. A tier name allows its `-fast` twin (same price).
            Defaults to `lite`, `base` and `core`.
        default_processor: Used when the model names none; must be allowed.
        max_wait: Seconds one tool call may wait for a run before handing back its id
            (at most 45, so calls end well before hosts' 60 s limits).
        max_batch_items: The most items one enrichment may start (each is a paid run).
        max_output_tokens: Tool results are cut to stay under this estimate (at most 20,000).
        generic_tools: Offer the generic research and enrichment tools; when False only the
            typed task tools (and `get_research_result`, which collects their runs) remain.
        progress_interval: Seconds between progress notifications while a call waits (at
            most 10).
        reuse_window: Seconds during which an identical request reuses the run it started
            instead of paying for a new one (so a retried or interrupted call loses nothing).
        api_key: The Parallel API key; None reads `PARALLEL_API_KEY`.
        base_url: The API's URL; None reads `PARALLEL_BASE_URL`.
    """

    processors: tuple[str, ...] = field(
        default_factory=lambda: expand_processors(DEFAULT_ALLOWED_TIERS)
    )
    default_processor: str = DEFAULT_PROCESSOR
    max_wait: float = 40.0
    max_batch_items: int = 100
    max_output_tokens: int = MAX_OUTPUT_TOKENS_CAP
    generic_tools: bool = True
    progress_interval: float = 5.0
    reuse_window: float = 3600.0
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "processors", expand_processors(self.processors))
        if not self.processors:
            raise ValueError("Allow at least one processor (e.g. --processors base).")
        get_processor(self.default_processor)
        if self.default_processor not in self.processors:
            raise ValueError(
                f"The default processor {self.default_processor!r} is not among the allowed "
                f"processors ({', '.join(self.processors)}). Allow it or pick another default."
            )
        if not 0 < self.max_wait <= MAX_WAIT_CAP:
            raise ValueError(f"max_wait must be above 0 and at most {MAX_WAIT_CAP:.0f} seconds.")
        if not 0 < self.progress_interval <= MAX_PROGRESS_INTERVAL:
            raise ValueError(
                f"progress_interval must be above 0 and at most {MAX_PROGRESS_INTERVAL:.0f} s."
            )
        if self.max_batch_items < 1:
            raise ValueError("max_batch_items must be at least 1.")
        if not 1000 <= self.max_output_tokens <= MAX_OUTPUT_TOKENS_CAP:
            raise ValueError(
                f"max_output_tokens must be between 1,000 and {MAX_OUTPUT_TOKENS_CAP:,}."
            )
        if self.reuse_window < 0:
            raise ValueError("reuse_window must not be negative.")

    @property
    def most_expensive(self) -> str:
        """The allowed processor with the highest list price."""
        return max(self.processors, key=lambda name: PROCESSORS[name].price_per_run)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> ServerSettings:
        """Settings from `PARALLEL_MCP_*` variables, then `overrides` (None values ignored).

        Variables: `PARALLEL_MCP_PROCESSORS` (comma-separated), `PARALLEL_MCP_DEFAULT_PROCESSOR`,
        `PARALLEL_MCP_MAX_WAIT`, `PARALLEL_MCP_MAX_BATCH_ITEMS`, `PARALLEL_MCP_MAX_OUTPUT_TOKENS`,
        `PARALLEL_MCP_GENERIC_TOOLS` (`0` to turn off).

        Raises:
            ValueError: a value is malformed or out of range; the message names it.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if processors := _split(env.get(ENV_PREFIX + "PROCESSORS")):
            values["processors"] = expand_processors(processors)
        if default := env.get(ENV_PREFIX + "DEFAULT_PROCESSOR", "").strip():
            values["default_processor"] = default
        numbers: dict[str, type[int] | type[float]] = {
            "max_wait": float,
            "max_batch_items": int,
            "max_output_tokens": int,
        }
        for name, kind in numbers.items():
            raw = env.get(ENV_PREFIX + name.upper(), "").strip()
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise ValueError(
                        f"{ENV_PREFIX}{name.upper()}={raw!r} is not a number."
                    ) from None
        generic = env.get(ENV_PREFIX + "GENERIC_TOOLS", "").strip().lower()
        if generic:
            values["generic_tools"] = generic not in ("0", "false", "no", "off")
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "processors" in values and "default_processor" not in values:
            allowed: tuple[str, ...] = tuple(cast(Iterable[str], values["processors"]))
            if DEFAULT_PROCESSOR not in allowed:
                # The cheapest allowed one, rather than an error the operator did not cause.
                values["default_processor"] = min(
                    allowed, key=lambda name: PROCESSORS[name].price_per_run
                )
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class HttpSettings:
    """How the server listens over Streamable HTTP.

    Attributes:
        host: The address to bind.
        port: The port to bind.
        path: The MCP endpoint's path.
        tokens: Bearer tokens that may call the server; at least one is required.
        allowed_hosts: Host names (beyond loopback) that clients may use to reach the
            server; every other `Host` header is refused (DNS-rebinding protection).
        allowed_origins: Browser origins allowed beyond loopback and the allowed hosts.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/mcp"
    tokens: tuple[str, ...] = field(default=(), repr=False)
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.tokens or not all(t.strip() for t in self.tokens):
            raise ValueError(
                f"Serving over HTTP needs at least one bearer token: set {ENV_PREFIX}TOKENS "
                "(comma-separated) to long random strings, e.g. `openssl rand -hex 32`."
            )
        if not self.path.startswith("/"):
            raise ValueError("The MCP path must start with '/'.")
        if not 0 <= self.port <= 65535:
            raise ValueError("The port must be between 0 and 65535.")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> HttpSettings:
        """Settings from `PARALLEL_MCP_TOKENS`, `PARALLEL_MCP_ALLOWED_HOSTS` and
        `PARALLEL_MCP_ALLOWED_ORIGINS` (comma-separated), then `overrides` (None ignored).
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "tokens": tuple(_split(env.get(ENV_PREFIX + "TOKENS"))),
            "allowed_hosts": tuple(_split(env.get(ENV_PREFIX + "ALLOWED_HOSTS"))),
            "allowed_origins": tuple(_split(env.get(ENV_PREFIX + "ALLOWED_ORIGINS"))),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def host_patterns(self) -> list[str]:
        """`Host` header patterns accepted: loopback on any port plus the allowed hosts."""
        patterns = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
        for host in self.allowed_hosts:
            patterns += [host] if ":" in host.rstrip("]") else [host, f"{host}:*"]
        return list(dict.fromkeys(patterns))

    def origin_patterns(self) -> list[str]:
        """`Origin` header patterns accepted: loopback, the allowed hosts, the allowed origins."""
        patterns = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
        for host in self.allowed_hosts:
            patterns += [f"https://{host}", f"http://{host}"]
        patterns += list(self.allowed_origins)
        return list(dict.fromkeys(patterns))
