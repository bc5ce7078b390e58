"""`Task`: one research task, defined once and used everywhere.

A task names its input and output shapes and its processor. The same definition becomes the
wire task spec, a typed `client.run(task, input)`, a LangChain tool, an MCP tool, a CLI run and
a batch enrichment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ._config import DEFAULT_PROCESSOR
from ._exceptions import InvalidInputError
from ._schema import task_spec

__all__ = ["TASK_METADATA_KEY", "Task", "task_of"]

TASK_METADATA_KEY = "pt_task"
"""Run metadata key naming the task (or tool) a run was started for, so that whoever fetches
the result later (a get-result tool, another process) can parse it with that task's model."""

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")

# The strictest tool-name rule among the hosts we serve (OpenAI functions, Anthropic tools, MCP).
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Task(Generic[InputT, OutputT]):
    """A research task: what goes in, what comes out, and which processor does the work.

    The spec is compiled when the task is defined, so a schema Parallel would reject fails at
    import time rather than after a paid run starts.

    Args:
        name: A tool name: a letter, then up to 63 letters, digits, `_` or `-`.
        description: What the task finds out; agents read it to decide when to call it.
        output: A pydantic model (typed, cited fields), a text description (a cited text
            answer), a JSON schema, or None for an auto schema chosen by the processor.
        input: A pydantic model for structured input, or None for a free-text input.
        processor: The processor tier; it sets both price and depth (see `PROCESSORS`).

    Example:
        >>> class Company(BaseModel):
        ...     company_name: str
        >>> class Profile(BaseModel):
        ...     founding_date: str = Field(description="MM-YYYY")
        >>> profile = Task("company_profile", "Profile a company.", input=Company,
        ...                output=Profile, processor="core")
    """

    name: str
    description: str
    output: type[OutputT] | str | Mapping[str, Any] | None = None
    input: type[InputT] | None = None
    processor: str = DEFAULT_PROCESSOR
    spec: dict[str, Any] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"Task name {self.name!r} is not a valid tool name: start with a letter and use "
                "at most 64 letters, digits, '_' or '-'."
            )
        if not self.description.strip():
            raise ValueError(f"Task {self.name!r} needs a description; agents choose tools by it.")
        if self.input is not None and not _is_model(self.input):
            raise TypeError(f"Task {self.name!r}: input must be a pydantic model class or None.")
        spec = task_spec(input=self.input_model, output=self.output)  # type: ignore[arg-type]
        object.__setattr__(self, "spec", spec)

    @property
    def output_model(self) -> type[BaseModel] | None:
        """The output model when the output is typed, else None."""
        return self.output if _is_model(self.output) else None  # type: ignore[return-value]

    @property
    def input_model(self) -> type[BaseModel] | None:
        """The input model when the input is structured, else None."""
        return self.input if _is_model(self.input) else None  # type: ignore[return-value]

    def prepare_input(self, value: Any) -> str | dict[str, Any]:
        """Validate an input and turn it into what the API takes.

        Args:
            value: An instance of the input model, a mapping of its fields, or (for tasks
                without an input model) a string.

        Raises:
            InvalidInputError: the value does not fit the input model; nothing was sent.
        """
        model = self.input_model
        if model is None:
            if isinstance(value, str):
                if not value.strip():
                    raise InvalidInputError(f"Task {self.name!r} needs a non-empty input.")
                return value
            if isinstance(value, BaseModel):
                return value.model_dump(mode="json")
            if isinstance(value, Mapping):
                return dict(value)
            raise InvalidInputError(
                f"Task {self.name!r} takes a string or an object, not {type(value).__name__}."
            )
        try:
            instance = value if isinstance(value, model) else model.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(input)'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidInputError(
                f"Input for task {self.name!r} does not fit {model.__name__}: {problems}"
            ) from None
        return instance.model_dump(mode="json")


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def task_of(run: Any, tasks: Iterable[Task[Any, Any]]) -> Task[Any, Any] | None:
    """The task a run was started for, by the `TASK_METADATA_KEY` tag in its metadata."""
    name = (getattr(run, "metadata", None) or {}).get(TASK_METADATA_KEY)
    return next((task for task in tasks if task.name == name), None) if name else None
