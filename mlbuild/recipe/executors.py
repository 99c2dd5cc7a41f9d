"""The recipe's ``executors:`` section and a step's ``executor:``: where a step's process runs.

Each key of ``executors:`` is the name of an executor mlbuild has (``mlbuild.exec.executor.
EXECUTORS``) and holds its settings; a step picks one with ``executor: NAME`` (default ``local``),
and ``mlbuild run --executor NAME`` picks one for every command step of a run.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

# the executors a recipe may name; mlbuild/exec/executor.py registers each (a test checks both)
ExecutorName = Literal["local", "clean", "container"]
EXECUTOR_NAMES: tuple[str, ...] = ("local", "clean", "container")


class _Options(BaseModel):
    # defer_build: as fields.StrictModel
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


EnvPassthrough = list[Annotated[str, Field(pattern=ENV_NAME)]]


class CleanOptions(_Options):
    """A local process that sees no host variable the recipe does not name."""

    env_passthrough: EnvPassthrough = Field(
        default_factory=list,
        description="Host environment variables passed to the step as they are, besides `PATH` "
        "and `HOME` (and the step's `env` and `secrets`). Their names enter the fingerprint, "
        "their values do not.",
        examples=[["LANG", "TZ"]],
    )


class ContainerOptions(_Options):
    """A step run inside a Docker image through the Docker Engine API (`mlbuild-engine[docker]`)."""

    image: str = Field(
        min_length=1,
        description="The image the step runs in (`name:tag` or `name@sha256:…`). Its resolved "
        "id enters the fingerprint: re-tagging the name to another image re-runs the step.",
        examples=["mlbuild-base:bookworm", "python:3.11-slim"],
    )
    network: Literal["none", "host", "bridge"] = Field(
        default="none",
        description="The container's network: `none` (default, hermetic), `host` or `bridge`.",
    )
    user: str | None = Field(
        default=None,
        pattern=r"^\d+:\d+$",
        description="`UID:GID` the step runs as (default: the user running mlbuild, so the "
        "outputs it writes are yours).",
        examples=["1000:1000"],
    )
    env_passthrough: EnvPassthrough = Field(
        default_factory=list,
        description="Host environment variables passed into the container as they are (besides "
        "the step's `env` and `secrets`); nothing else of the host's environment is.",
        examples=[["HTTP_PROXY"]],
    )


class Executors(_Options):
    """Settings of the executors steps may run on (`executor:` on a step, `run --executor`)."""

    clean: CleanOptions | None = Field(
        default=None,
        description="`clean`: a local process with only the declared environment (like `env -i`).",
    )
    container: ContainerOptions | None = Field(
        default=None, description="`container`: the step runs inside a Docker image."
    )


def needs_settings(name: str) -> bool:
    """Whether executor ``name`` cannot run without its section under ``executors:``."""
    field = Executors.model_fields.get(name)
    if field is None:
        return False
    options = field.annotation
    model = next((a for a in getattr(options, "__args__", ()) if isinstance(a, type)), None)
    if model is None or not issubclass(model, BaseModel):
        return False
    return any(f.is_required() for f in model.model_fields.values())
