"""The ``package:`` section of ``ml.yaml``: how the model ships — a bundle, a Docker image.

Every value that reaches a generated Dockerfile is checked here by pattern (image references,
Debian package names, label keys, user names), so no recipe value can add an instruction.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Docker's reference grammar (distribution/reference), lowercase path components
IMAGE_NAME = r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
REGISTRY = rf"^{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]{{1,5}})?$"
BASE_IMAGE = (
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]{1,5})?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?$"
)
DEBIAN_PACKAGE = r"^[a-z0-9][a-z0-9+.-]+$"
LABEL_KEY = r"^[a-z0-9](?:[a-z0-9._/-]*[a-z0-9])?$"
LABEL_VALUE = r"^[^\x00-\x1f\x7f]*$"  # one printable line
USER_NAME = r"^[a-z_][a-z0-9_-]{0,31}$"
SAMPLE_FILE = r"^.*\.(csv|jsonl|ndjson)$"


class _Model(BaseModel):
    # defer_build: as fields.StrictModel
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


class DockerTarget(_Model):
    """A Docker image of the model: the serving runtime, the locked dependencies, the code and
    the artifacts, built through the Docker Engine API."""

    image: str = Field(
        pattern=IMAGE_NAME,
        max_length=200,
        description="Repository name of the image (`iris`, `team/iris`); its tag is the model "
        "version when published.",
        examples=["iris"],
    )
    base: str = Field(
        default="python:3.11-slim-bookworm",
        pattern=BASE_IMAGE,
        description="Base image with Python 3 and its `venv` module (Debian-based). Its Python "
        "decides the platform the dependency wheels are fetched for.",
        examples=["python:3.11-slim-bookworm", "mlbuild-base:bookworm"],
    )
    registry: str | None = Field(
        default=None,
        pattern=REGISTRY,
        description="Registry host (and port) `mlbuild publish` pushes to. Credentials come from "
        "the Docker config (`docker login`) or MLBUILD_REGISTRY_USER / "
        "MLBUILD_REGISTRY_PASSWORD, never from ml.yaml.",
        examples=["registry.example.com", "127.0.0.1:5000"],
    )
    system_packages: list[Annotated[str, Field(pattern=DEBIAN_PACKAGE)]] = Field(
        default_factory=list,
        description="Debian packages installed with apt-get into the image (the only build step "
        "that uses the network).",
        examples=[["libgomp1"]],
    )
    labels: dict[
        Annotated[str, Field(pattern=LABEL_KEY)], Annotated[str, Field(pattern=LABEL_VALUE)]
    ] = Field(
        default_factory=dict,
        description="Extra OCI labels. mlbuild adds the provenance labels itself (source commit, "
        "dirty flag, run id, recipe hash, model name and version, data versions, lock hash, "
        "created time).",
        examples=[{"org.opencontainers.image.vendor": "ACME"}],
    )
    user: str = Field(
        default="mlbuild",
        pattern=USER_NAME,
        description="Name of the non-root user the server runs as (uid 10001); never `root`.",
        json_schema_extra={"not": {"const": "root"}},  # what _not_root says, for editors
    )
    port: int = Field(
        default=8080, ge=1024, le=65535, description="Port the server listens on in the container."
    )

    @field_validator("user")
    @classmethod
    def _not_root(cls, value: str) -> str:
        if value == "root":
            raise ValueError("the image must not run as root; pick another name")
        return value


class PackageSection(_Model):
    """How the model is packaged: a bundle (a directory or `.tar.gz` that `mlbuild serve BUNDLE`
    serves with no repository) and a Docker image."""

    code: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        description="Files or folders of servable code to ship (the model class and what it "
        "imports). Default: the `.py` files of the folder holding `model.class`.",
        examples=[["src/serve.py", "src/features.py"]],
    )
    sample: Annotated[str, Field(pattern=SAMPLE_FILE)] | None = Field(
        default=None,
        description="Rows (`.csv` with a header, or `.jsonl`) the smoke test sends to the built "
        "image and compares with in-process predictions. Default: rows made from the signature.",
        examples=["tests/sample.csv"],
    )
    bundle: Annotated[str, Field(min_length=1)] | None = Field(
        default=None,
        description="Where `mlbuild package` writes the bundle: a path ending in `.tar.gz` for an "
        "archive, any other path for a directory.",
        examples=["dist/iris.tar.gz", "dist/iris-bundle"],
    )
    docker: DockerTarget | None = Field(default=None, description="The Docker image target.")
