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

from .._exceptions import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    ParallelError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RunMayExistError,
    TaskFailedError,
    TaskTimeoutError,
    UnprocessableEntityError,
)

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
    """The agent-facing error for a parallel-tools error.

    Args:
        exc: What the core raised.
        result_tool: The name of the tool that fetches results later, to point the agent at
            it when a run exists and may still finish; None when there is no such tool.
    """
    text = str(exc)
    later = (
        f"Call {result_tool} with run_id {exc.run_id!r} later to collect its answer"
        if result_tool and exc.run_id
        else None
    )
    message: str
    if isinstance(exc, TaskTimeoutError):
        message = (
            f"Research run {exc.run_id} is still running after {_seconds(exc.waited)} of waiting. "
            "It was not cancelled and keeps its result. "
            + (
                f"{later}; do not start the same research again."
                if later
                else f"Its answer can be collected later with run id {exc.run_id}."
            )
        )
    elif isinstance(exc, TaskFailedError):
        message = f"The research run failed. {text}"
    elif isinstance(exc, RunMayExistError):
        created = (
            f" Runs known to exist: {', '.join(exc.created_run_ids)}."
            if exc.created_run_ids
            else ""
        )
        message = (
            "Starting the research run failed in a way that leaves open whether it started; it "
            "was not retried, so as not to pay twice. Do not start the same research again "
            f"right away; tell the user if the answer matters. {text}{created}"
        )
    elif isinstance(exc, ConfigurationError | AuthenticationError | PermissionDeniedError):
        message = (
            "Parallel is not set up correctly for this tool, so retrying will not help; tell "
            f"the user. {text}"
        )
    elif isinstance(exc, PaymentRequiredError):
        message = (
            "The Parallel account has run out of credit, so retrying will not help; tell the "
            f"user. {text}"
        )
    elif isinstance(exc, RateLimitError):
        pause = f"{exc.retry_after:.0f} s" if exc.retry_after else "a minute"
        message = f"Parallel is limiting the request rate. Wait {pause} before trying again. {text}"
    elif isinstance(exc, InvalidInputError | BadRequestError | UnprocessableEntityError):
        message = f"The request was not accepted: {text} Fix the arguments and call the tool again."
    elif isinstance(exc, NotFoundError):
        message = f"Parallel has no such run. {text} Use a run_id exactly as a tool returned it."
    elif isinstance(exc, APIConnectionError | InternalServerError):
        message = f"Parallel could not be reached or had a problem. {text}" + (
            f" The run may still finish. {later}." if later else " Try again in a little while."
        )
    else:
        message = text + (f" {later}." if later else "")
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


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
