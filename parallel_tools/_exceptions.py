"""Every error parallel-tools raises, rooted at `ParallelError`.

    ParallelError
    ├── ConfigurationError        no API key, bad base URL (raised before any request)
    │   └── MissingExtraError     a feature needs an optional extra that is not installed
    ├── InvalidInputError         bad input caught locally, before anything was sent or paid
    │   └── SchemaError           a task spec breaks Parallel's schema rules
    ├── APIError                  something went wrong talking to the API
    │   ├── APIStatusError        the API answered with an error status
    │   │   ├── BadRequestError           400
    │   │   ├── AuthenticationError       401
    │   │   ├── PaymentRequiredError      402
    │   │   ├── PermissionDeniedError     403 (also: processor not allowed)
    │   │   ├── NotFoundError             404
    │   │   ├── ConflictError             409
    │   │   ├── UnprocessableEntityError  422, with the server's `detail`
    │   │   ├── RateLimitError            429, with `retry_after`
    │   │   └── InternalServerError       5xx
    │   ├── APIConnectionError    the request did not get an answer
    │   │   └── APITimeoutError
    │   └── RunMayExistError      a create failed after it may have reached the server
    ├── TaskFailedError           the run ended in `failed` or `cancelled`
    ├── TaskTimeoutError          our own deadline passed; the run goes on (also a TimeoutError)
    ├── OutputValidationError     the output does not fit the output model (the raw result is kept)
    └── WebhookVerificationError  a webhook's signature or timestamp is not valid

Every error carries `run_id` when one is known and `ref_id` when the server gave one, and its
message says what to do next. No message ever contains the API key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from ._models import TaskRun
    from ._results import TaskResult

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "InternalServerError",
    "InvalidInputError",
    "MissingExtraError",
    "NotFoundError",
    "OutputValidationError",
    "ParallelError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "RunMayExistError",
    "SchemaError",
    "TaskFailedError",
    "TaskTimeoutError",
    "UnprocessableEntityError",
    "WebhookVerificationError",
]


class ParallelError(Exception):
    """Base class of every error raised by parallel-tools.

    Attributes:
        message: What went wrong and what to do about it.
        run_id: The task run concerned, when there is one.
        ref_id: Parallel's reference id for the error, to quote to their support.
        created_run_ids: Runs that exist although the call failed (e.g. the batches that
            `add_runs` had sent before a later one failed); empty otherwise.
    """

    def __init__(
        self, message: str, *, run_id: str | None = None, ref_id: str | None = None
    ) -> None:
        self.message = message
        self.run_id = run_id
        self.ref_id = ref_id
        # Runs a multi-request call (add_runs in batches) had created before it failed.
        self.created_run_ids: list[str] = []
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.run_id and self.run_id not in self.message:
            parts.append(f"(run_id: {self.run_id})")
        if self.ref_id and self.ref_id not in self.message:
            parts.append(f"(ref_id: {self.ref_id})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigurationError(ParallelError, ValueError):
    """The client is not configured well enough to make a request (e.g. no API key)."""


class MissingExtraError(ConfigurationError, ImportError):
    """A feature needs an optional extra; the message names the `pip install` to run."""

    def __init__(self, feature: str, extra: str, missing: str) -> None:
        super().__init__(
            f"{feature} needs the {extra!r} extra, which is not installed (no module {missing!r}). "
            f'Install it with: pip install "parallel-tools[{extra}]"'
        )


def require(feature: str, extra: str, *modules: str) -> None:
    """Raise `MissingExtraError` unless every module can be imported."""
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(feature, extra, module)


class InvalidInputError(ParallelError, ValueError):
    """Input that Parallel would reject (or that cannot be sent), caught before any request."""


class SchemaError(InvalidInputError):
    """A task spec breaks one of Parallel's schema rules; it was rejected before spending anything.

    Attributes:
        problems: One line per rule broken, each naming the JSON path concerned.
    """

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class APIError(ParallelError):
    """Talking to the API failed.

    Attributes:
        request: The request that failed, when there is one.
        body: The parsed error body (JSON if possible, else text, else None).
    """

    def __init__(
        self,
        message: str,
        *,
        request: httpx.Request | None = None,
        body: Any = None,
        run_id: str | None = None,
        ref_id: str | None = None,
    ) -> None:
        super().__init__(message, run_id=run_id, ref_id=ref_id)
        self.request = request
        self.body = body


class APIStatusError(APIError):
    """The API answered with a 4xx or 5xx status.

    Attributes:
        status_code: The HTTP status.
        response: The response (already read).
        detail: The server's `error.detail` object, when it sent one.
    """

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: Any = None,
        run_id: str | None = None,
        ref_id: str | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message, request=response.request, body=body, run_id=run_id, ref_id=ref_id)
        self.response = response
        self.status_code = response.status_code
        self.detail = detail


class BadRequestError(APIStatusError):
    """400: the request was malformed."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or not valid."""


class PaymentRequiredError(APIStatusError):
    """402: the account has too little credit (running runs and groups reserve credit too)."""


class PermissionDeniedError(APIStatusError):
    """403: the processor is not valid or the key may not use it."""


class NotFoundError(APIStatusError):
    """404: no such run or task group (for `/result`: the run may also have failed)."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's state."""


class UnprocessableEntityError(APIStatusError):
    """422: the server rejected the request body; `detail` says which part."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    Attributes:
        retry_after: Seconds the server asked us to wait, when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the API or a gateway in front of it failed."""


class APIConnectionError(APIError):
    """The request got no answer: DNS, refused or dropped connection, TLS failure."""


class APITimeoutError(APIConnectionError):
    """The request got no answer in time."""


class RunMayExistError(APIError):
    """A create request failed in a way that leaves open whether the server accepted it.

    It is not retried automatically, because a retry could start (and bill) a second run.

    Attributes:
        created_run_ids: Runs known to exist from earlier requests of the same call (e.g. the
            batches of `add_runs` that succeeded before this one failed).
    """

    def __init__(
        self, message: str, *, created_run_ids: list[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.created_run_ids = created_run_ids or []


class TaskFailedError(ParallelError):
    """The run ended without a result (status `failed` or `cancelled`).

    Attributes:
        run: The run as last seen, with its `error`.
        error_message: The run's own error message, if it had one.
    """

    def __init__(self, message: str, *, run: TaskRun, ref_id: str | None = None) -> None:
        super().__init__(message, run_id=run.run_id, ref_id=ref_id)
        self.run = run
        self.error_message = run.error.message if run.error else None


class TaskTimeoutError(ParallelError, TimeoutError):
    """Our own deadline passed while the run was still going.

    The run is not cancelled and keeps its result: resume with `client.wait(err.run_id)`.
    """

    def __init__(self, message: str, *, run_id: str, waited: float) -> None:
        super().__init__(message, run_id=run_id)
        self.waited = waited


class OutputValidationError(ParallelError, ValueError):
    """The run completed, but its output does not validate against the output model.

    Nothing is lost: `result` holds the raw content and its basis.

    Attributes:
        result: The result with `parsed` left as None.
        errors: The validation errors, as pydantic reports them.
    """

    def __init__(
        self, message: str, *, result: TaskResult[Any], errors: list[dict[str, Any]]
    ) -> None:
        super().__init__(message, run_id=result.run_id)
        self.result = result
        self.errors = errors


class WebhookVerificationError(ParallelError):
    """A webhook delivery failed verification (bad signature, stale timestamp or bad body)."""
