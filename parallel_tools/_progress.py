"""Progress of a run while something waits for it, condensed from its event stream.

Agents' hosts need a heartbeat while a tool waits (MCP clients cut silent calls; LangChain streams
custom events), and people want to see what the run is doing. `ProgressTracker` turns raw events
into `Progress` snapshots; the clients' `wait_with_progress` feeds it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ._models import (
    ProgressMessageEvent,
    ProgressStatsEvent,
    RunEvent,
    RunStateEvent,
)

__all__ = ["Progress", "ProgressTracker"]


@dataclass(frozen=True, slots=True)
class Progress:
    """What a run has done so far.

    Attributes:
        run_id: The run.
        status: Its last known status (`queued`, `running`, ...), if seen.
        message: The latest progress message (the processor's plan, searches, findings).
        kind: That message's kind: `plan`, `search`, `result`, `tool_call`, ...
        messages: How many progress messages have arrived.
        meter: Parallel's progress meter, 0 to 100, when it reports one.
        sources_read: How many sources the run has read, when reported.
        elapsed: Seconds since waiting began.
    """

    run_id: str
    status: str | None = None
    message: str | None = None
    kind: str | None = None
    messages: int = 0
    meter: float | None = None
    sources_read: int | None = None
    elapsed: float = 0.0

    def describe(self) -> str:
        """One line for a progress bar or a notification."""
        parts = [self.status or "waiting"]
        if self.meter is not None:
            parts.append(f"{self.meter:.0f}%")
        if self.sources_read:
            parts.append(f"{self.sources_read} sources read")
        line = ", ".join(parts) + f" after {self.elapsed:.0f} s"
        return f"{line}: {self.message}" if self.message else line


class ProgressTracker:
    """Folds a run's events into `Progress` snapshots."""

    def __init__(self, run_id: str) -> None:
        self._started = time.monotonic()
        self._current = Progress(run_id=run_id)

    def update(self, event: RunEvent) -> Progress | None:
        """Take an event; return the new snapshot if the event told us something."""
        current = self._current
        if isinstance(event, ProgressMessageEvent):
            current = replace(
                current, message=event.message, kind=event.kind, messages=current.messages + 1
            )
        elif isinstance(event, ProgressStatsEvent):
            current = replace(
                current,
                meter=event.progress_meter,
                sources_read=event.source_stats.num_sources_read,
            )
        elif isinstance(event, RunStateEvent):
            current = replace(current, status=event.run.status)
        else:
            return None
        self._current = current
        return self.snapshot()

    def snapshot(self) -> Progress:
        """The current state, with the elapsed time brought up to date."""
        return replace(self._current, elapsed=time.monotonic() - self._started)
