"""Defaults, limits and the processor catalogue shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_BASE_URL: Final = "https://api.parallel.ai"
API_KEY_ENV: Final = "PARALLEL_API_KEY"
BASE_URL_ENV: Final = "PARALLEL_BASE_URL"

DEFAULT_PROCESSOR: Final = "base"

# Seconds the server holds one `/result` request open. Shorter than the API default of 600 s on
# purpose: proxies and NAT boxes drop idle connections after a minute or two, and a shorter hold
# costs nothing (GETs are not rate limited) while keeping every hold inside that window.
DEFAULT_RESULT_HOLD: Final = 60
# Added to the hold to get the HTTP read timeout, so the server always answers (200 or 408)
# before the client gives up on the connection.
HOLD_READ_MARGIN: Final = 20.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_REQUEST_TIMEOUT: Final = 60.0
DEFAULT_MAX_RETRIES: Final = 4

MAX_RUNS_PER_GROUP_REQUEST: Final = 1000
MAX_SPEC_CHARS: Final = 15_000
MAX_SPEC_AND_INPUT_CHARS: Final = 25_000
MAX_SCHEMA_DEPTH: Final = 5
MAX_SCHEMA_PROPERTIES: Final = 100
MAX_ENUM_VALUES: Final = 500
LARGE_ENUM_THRESHOLD: Final = 250
LARGE_ENUM_MAX_CHARS: Final = 7_500
MAX_SCHEMA_STRING_CHARS: Final = 25_000
MAX_SOURCE_POLICY_DOMAINS: Final = 200
MAX_METADATA_KEY_CHARS: Final = 16
MAX_METADATA_VALUE_CHARS: Final = 512
MAX_MCP_SERVERS: Final = 10


@dataclass(frozen=True, slots=True)
class Processor:
    """One Parallel processor tier with its list price and typical latency.

    Attributes:
        name: The wire name, e.g. ``"core"`` or ``"core-fast"``.
        price_per_1000: List price in US dollars per 1,000 runs (``-fast`` costs the same).
        min_seconds: Lower end of the documented latency range.
        max_seconds: Upper end of the documented latency range.
        max_fields: Roughly how many output fields the tier handles well.
    """

    name: str
    price_per_1000: float
    min_seconds: float
    max_seconds: float
    max_fields: int

    @property
    def price_per_run(self) -> float:
        """List price of a single run in US dollars."""
        return self.price_per_1000 / 1000

    @property
    def is_fast(self) -> bool:
        """Whether this is a ``-fast`` variant."""
        return self.name.endswith("-fast")

    @property
    def tier(self) -> str:
        """The tier name without the ``-fast`` suffix."""
        return self.name.removesuffix("-fast")


def _catalogue() -> dict[str, Processor]:
    # (tier, $/1000 runs, standard latency range, -fast latency range, ~max fields), from
    # Parallel's processor guide and pricing page.
    rows = [
        ("lite", 5, (10, 60), (10, 20), 2),
        ("base", 10, (15, 100), (15, 50), 5),
        ("core", 25, (60, 300), (15, 100), 10),
        ("core2x", 50, (60, 600), (15, 180), 10),
        ("pro", 100, (120, 600), (30, 300), 20),
        ("ultra", 300, (300, 1500), (60, 600), 20),
        ("ultra2x", 600, (300, 3000), (60, 1200), 25),
        ("ultra4x", 1200, (300, 5400), (60, 2400), 25),
        ("ultra8x", 2400, (300, 7200), (60, 3600), 25),
    ]
    out: dict[str, Processor] = {}
    for tier, price, std, fast, fields in rows:
        out[tier] = Processor(tier, price, std[0], std[1], fields)
        out[f"{tier}-fast"] = Processor(f"{tier}-fast", price, fast[0], fast[1], fields)
    return out


PROCESSORS: Final[dict[str, Processor]] = _catalogue()
"""Every processor the Task API accepts, by wire name."""


def get_processor(name: str) -> Processor:
    """Look up a processor by name.

    Raises:
        ValueError: if the name is not one of Parallel's processors; the message lists them.
    """
    try:
        return PROCESSORS[name]
    except KeyError:
        known = ", ".join(PROCESSORS)
        raise ValueError(f"Unknown processor {name!r}. Choose one of: {known}.") from None
