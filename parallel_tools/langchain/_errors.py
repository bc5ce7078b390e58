"""Turning parallel-tools errors into tool errors an agent can act on.

LangChain's agent loop only survives a failing tool if the tool raises `ToolException` and
handles it (`create_agent`'s tool node re-raises everything else), so every failure a user can
expect becomes a `ParallelToolError` whose text says what happened and what the agent should do
next. The core's messages already carry the details (and never the API key); the text added
here only tells the agent whether retrying, fixing its arguments, or telling the user helps.
"""

from __future__ import annotations

from langchain_core.tools import ToolException
from pydantic import ValidationError

from .._agent import agent_error_text
from .._exceptions import ParallelError

__all__ = ["ParallelToolError", "tool_error", "validation_error_message"]


class ParallelToolError(ToolException):
    """A Parallel tool call failed in a way the agent should hear about, not crash on.

    Tools handle it by default (`handle_tool_error=True`): the agent receives the message as
    an error `ToolMessage` and the loop goes on.

    Attributes:
        run_id: The run concerned, when one exists (e.g. still running after the wait budget).
        cause: The parallel-tools error behind it.
    """

    def __init__(self, message: str, *, run_id: str | None = None, cause: Exception | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.cause = cause


def tool_error(exc: ParallelError, *, result_tool: str | None = None) -> ParallelToolError:
    """The agent-facing error for a parallel-tools error (worded by the core's
    `agent_error_text`, shared with the MCP server).

    Args:
        exc: What the core raised.
        result_tool: The name of the tool that fetches results later, to point the agent at
            it when a run exists and may still finish; None when there is no such tool.
    """
    message = agent_error_text(exc, result_tool=result_tool)
    return ParallelToolError(message, run_id=exc.run_id, cause=exc)


def validation_error_message(error: ValidationError | Exception) -> str:
    """The text an agent gets when its tool arguments do not fit the tool's schema.

    LangChain's default is a bare "Tool input validation error", which gives the model nothing
    to correct; this names each offending argument. Input values are not echoed back.
    """
    if not isinstance(error, ValidationError):
        return f"The tool arguments are not valid: {error}. Fix them and call the tool again."
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or '(arguments)'}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)
    )
    return (
        f"The tool arguments are not valid: {problems}. Call the tool again with arguments "
        "that match its schema."
    )
