"""What to tell an agent when a call fails: what happened, and what to do next.

The core's error messages describe the failure; an agent also needs to know whether retrying,
fixing its arguments, waiting, or telling the user is the way forward, and how to pick up a run
that exists. Every adapter (LangChain tools, the MCP server) words its errors with this one
function, so agents get the same guidance whichever host they run in.
"""

from __future__ import annotations

from ._config import API_KEY_ENV
from ._exceptions import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    OutputValidationError,
    ParallelError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RunMayExistError,
    TaskFailedError,
    TaskTimeoutError,
    UnprocessableEntityError,
)

__all__ = ["agent_error_text"]


def agent_error_text(
    exc: ParallelError,
    *,
    tool: str | None = None,
    result_tool: str | None = None,
    reuses_runs: bool = False,
) -> str:
    """The text an agent should read for a failed tool call.

    Args:
        exc: What the core raised (its message never contains the API key).
        tool: The tool that failed, to name when calling it again is the way forward.
        result_tool: The tool that collects a run's result later; when a run exists and may
            still finish, the agent is pointed at it instead of starting the research again.
        reuses_runs: Calling `tool` again with the same arguments picks up a run that was
            recorded (the MCP server does this), which is the safe retry after an ambiguous
            create.
    """
    again = f"call {tool} again" if tool else "call the tool again"
    later = (
        f"Call {result_tool} with run_id {exc.run_id!r} later to collect its answer"
        if result_tool and exc.run_id
        else None
    )
    if isinstance(exc, TaskTimeoutError):
        waited = f"{exc.waited:.0f} s" if exc.waited >= 10 else f"{exc.waited:.1f} s"
        pickup = (
            f"{later}; do not start the same research again."
            if later
            else f"Its answer can be collected later with run id {exc.run_id}."
        )
        return (
            f"Research run {exc.run_id} is still running after {waited} of waiting. It was not "
            f"cancelled and keeps its result. {pickup}"
        )
    if isinstance(exc, TaskFailedError):
        return f"The research run failed. {exc}"
    if isinstance(exc, OutputValidationError):
        return (
            f"Run {exc.run_id} finished, but its answer does not have the expected shape: "
            f"{exc.message}\n\nThe raw answer:\n\n{exc.result.to_markdown(excerpts=False)}"
        )
    if isinstance(exc, RunMayExistError):
        created = (
            f" Runs known to exist: {', '.join(exc.created_run_ids)}."
            if exc.created_run_ids
            else ""
        )
        retry = (
            f" Calling {tool or 'the tool'} again with the same arguments picks up the run if "
            "one was recorded."
            if reuses_runs
            else ""
        )
        return (
            "Starting the research run failed in a way that leaves open whether Parallel "
            "accepted it; it was not retried, so as not to pay twice. Do not start the same "
            f"research again right away; tell the user if the answer matters.{retry} "
            f"{exc}{created}"
        )
    if isinstance(exc, ConfigurationError):
        return (
            "Parallel is not set up correctly for this tool, so retrying will not help; tell "
            f"the user. {exc}"
        )
    if isinstance(exc, AuthenticationError):
        return (
            "Parallel is not set up correctly: it rejected the API key (401), so retrying will "
            f"not help; tell the user to check {API_KEY_ENV} where this tool is configured. {exc}"
        )
    if isinstance(exc, PermissionDeniedError):
        return (
            "Parallel is not set up correctly for this request (403): the processor is not "
            f"valid or not enabled for the API key, so retrying will not help; tell the user. {exc}"
        )
    if isinstance(exc, PaymentRequiredError):
        return (
            "The Parallel account has run out of credit (402), so retrying will not help; tell "
            f"the user to add credit at https://platform.parallel.ai. {exc}"
        )
    if isinstance(exc, RateLimitError):
        pause = f"{exc.retry_after:.0f} s" if exc.retry_after else "a minute"
        return (
            f"Parallel is rate-limiting requests (429). Wait {pause} before trying again with "
            f"the same arguments. {exc}"
        )
    if isinstance(exc, InvalidInputError | BadRequestError | UnprocessableEntityError):
        return f"The request was not accepted: {exc} Fix the arguments and {again}."
    if isinstance(exc, NotFoundError):
        return (
            f"Parallel has no such run or group. {exc} Use the id exactly as a tool returned it "
            "(run ids start with 'trun_', group ids with 'tgrp_')."
        )
    if isinstance(exc, APIConnectionError | InternalServerError):
        advice = (
            f" The run may still finish. {later}."
            if later
            else f" This is usually temporary; {again} in a little while."
        )
        return f"Parallel could not be reached or had a problem. {exc}{advice}"
    return f"{exc}" + (f" {later}." if later else "")
