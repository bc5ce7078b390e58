"""LangChain tools for Parallel's Task API: research that agents can call, wait on, and cite.

Needs the `[langchain]` extra (langchain-core only)::

    pip install "parallel-tools[langchain]"

- `ParallelTaskTool.from_task(task)`: a tool whose arguments are the task's input model and
  whose answer is the cited result (content) plus the `TaskResult` (artifact).
- `ParallelResearchTool()`: the same for free-form questions.
- `ParallelStartTool` + `ParallelGetResultTool`: start a run, collect it later.
- `ParallelToolkit`: all of them, configured once.

Expected failures (bad input, auth, credit, rate limits, failed or slow runs) come back to the
agent as error tool messages (`ParallelToolError`), never as crashes. While a tool waits, the
run's progress is sent as `parallel_progress` custom events and to the LangGraph stream writer.
See docs/langchain.md.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "parallel_tools.langchain needs langchain-core. Install it with: "
        'pip install "parallel-tools[langchain]"'
    ) from exc

from ._content import ContentFormat, result_content
from ._errors import ParallelToolError, tool_error, validation_error_message
from ._progress import PROGRESS_EVENT, ProgressRelay, progress_payload
from ._toolkit import ParallelToolkit
from ._tools import (
    TASK_METADATA_KEY,
    GetResultInput,
    ParallelGetResultTool,
    ParallelResearchTool,
    ParallelStartTool,
    ParallelTaskTool,
    ResearchInput,
    TextInput,
)

__all__ = [
    "PROGRESS_EVENT",
    "TASK_METADATA_KEY",
    "ContentFormat",
    "GetResultInput",
    "ParallelGetResultTool",
    "ParallelResearchTool",
    "ParallelStartTool",
    "ParallelTaskTool",
    "ParallelToolError",
    "ParallelToolkit",
    "ProgressRelay",
    "ResearchInput",
    "TextInput",
    "progress_payload",
    "result_content",
    "tool_error",
    "validation_error_message",
]
