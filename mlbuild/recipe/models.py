"""The ``ml.yaml`` recipe as pydantic models: the single source of truth.

The JSON Schema in ``schema/ml.schema.json``, the editor completions and the loader's error messages
all derive from these classes. Every field carries a description; unknown keys are errors.

Unions that a reader tells apart by shape (a string or a list, a path or a mapping) use a callable
discriminator so that a wrong value gets one error for the shape it has, not one per alternative.
The tags start with ``#`` so the loader can drop them from error paths.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mlbuild.recipe.executors import ExecutorName, Executors
from mlbuild.recipe.fields import ENV_NAME, STEP_NAME, Timeout
from mlbuild.recipe.fields import StrictModel as _Model
from mlbuild.recipe.fields import shape_tag as _shape
from mlbuild.recipe.model_tests import TEST_NAME, Test
from mlbuild.recipe.packaging import PackageSection
from mlbuild.recipe.search import SEARCH_NAME, Search
from mlbuild.remote_address import SCHEMA_PATTERN, parse_remote

SCHEMA_VERSION = 1
PARAMS_FROM = r"^search\.[A-Za-z_][A-Za-z0-9_-]*$"  # a step's params_from


class OutSpec(_Model):
    """An output with options; a bare string is the same as ``{path: ...}``."""

    path: str = Field(
        min_length=1,
        description="Path of the file or directory the step writes, relative to the recipe.",
        examples=["model.joblib", "data/features/"],
    )
    cache: bool = Field(
        default=True,
        description="Store the output in mlbuild's content-addressed cache so a later run with the "
        "same inputs restores it instead of re-running the step.",
    )
    persist: bool = Field(
        default=False,
        description="Keep the existing file when the step re-runs instead of deleting it first "
        "(for steps that update an output incrementally, e.g. a checkpoint).",
    )
    dvc: bool = Field(
        default=False,
        description="Also version the output with DVC: after the step runs it is added to DVC's "
        "cache (a `.dvc` file is written beside it) and `mlbuild push` uploads it to the DVC "
        "remote.",
    )


Out = Annotated[
    Annotated[str, Field(min_length=1), Tag("#str")] | Annotated[OutSpec, Tag("#map")],
    Discriminator(
        _shape,
        custom_error_type="out_shape",
        custom_error_message="expected a path string or a mapping with 'path', 'cache', 'persist', "
        "'dvc'",
    ),
]


def _program_named(argv: list[str]) -> list[str]:
    if not argv[0].strip():
        raise ValueError("the program (the list's first item) is empty; name the command to run")
    return argv


Command = Annotated[
    Annotated[str, Field(min_length=1), Tag("#str")]
    | Annotated[
        list[str],
        Field(min_length=1, json_schema_extra={"prefixItems": [{"pattern": r"\S"}]}),
        AfterValidator(_program_named),
        Tag("#list"),
    ],
    Discriminator(
        _shape,
        custom_error_type="cmd_shape",
        custom_error_message="expected a shell command string or a list of arguments (argv)",
    ),
]


class Step(_Model):
    """One step of the pipeline: a command with declared inputs and outputs."""

    cmd: Command = Field(
        description="The command. A string runs through `/bin/sh -c`; a list runs as argv without "
        "a shell. `${params.KEY}` is replaced by the parameter's value; in a string, only a value "
        "of letters, digits and `._-/:=+,@%` is allowed (anything else could change the command).",
        examples=["python src/train.py", ["python", "src/train.py", "--lr", "${params.train.lr}"]],
    )
    description: str | None = Field(default=None, description="What the step does, for humans.")
    deps: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Files or directories the step reads, or datasets as `data:NAME`. Their "
        "content hashes (a dataset's version) enter the step's fingerprint; an output of another "
        "step makes that step run first.",
        examples=[["src/train.py", "data/features/"]],
    )
    outs: list[Out] = Field(
        default_factory=list,
        description="Files or directories the step writes. They are cached by content and "
        "restored when the step's inputs are unchanged.",
        examples=[["model.joblib"], [{"path": "checkpoints/", "persist": True}]],
    )
    params: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Parameter keys the step reads (dotted, globs allowed: `train.*`). Only these "
        "values enter the fingerprint and the step's MLBUILD_PARAMS file.",
        examples=[["train.lr", "model.*"]],
    )
    metrics: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="JSON or YAML files the step writes whose values are recorded as metrics. "
        "They are outputs too.",
        examples=[["metrics.json"]],
    )
    env: dict[Annotated[str, Field(pattern=ENV_NAME)], str] = Field(
        default_factory=dict,
        description="Environment variables set for the command. They enter the fingerprint; use "
        "`secrets` for credentials.",
        examples=[{"OMP_NUM_THREADS": "1"}],
    )
    secrets: list[Annotated[str, Field(pattern=ENV_NAME)]] = Field(
        default_factory=list,
        description="Names of environment variables passed through to the command. Their values "
        "are never recorded, hashed or logged (they are masked in the step's output).",
        examples=[["AWS_SECRET_ACCESS_KEY"]],
    )
    needs: list[Annotated[str, Field(pattern=STEP_NAME)]] = Field(
        default_factory=list,
        description="Steps that must finish first although no file links them.",
    )
    always_run: bool = Field(
        default=False, description="Run the step every time, even when its inputs are unchanged."
    )
    params_from: str | None = Field(
        default=None,
        json_schema_extra={"pattern": PARAMS_FROM},  # checked by _params_from, which says more
        description="`search.NAME`: the step runs with the best params that `mlbuild search NAME` "
        "found last in this workspace, over the recipe's (for a final training on all the data, "
        "say). They enter its fingerprint: it re-runs only when they change, and `plan` says "
        "so. The step must read them (`params`), and may not be the search's step or one it "
        "depends on.",
        examples=["search.hpo"],
    )
    timeout: Timeout | None = Field(
        default=None,
        description="Stop the step and fail it after this long: seconds, or a number with s, m or "
        "h (`90`, `30m`, `2h`).",
        examples=["30m", 600],
    )
    executor: ExecutorName = Field(
        default="local",
        description="Where the command runs: `local` (default: a child process with your "
        "environment), `clean` (a local process that sees only the declared environment) or "
        "`container` (inside the image of `executors.container`). `mlbuild run --executor NAME` "
        "overrides it for a run.",
        examples=["container"],
    )

    @field_validator("params_from")
    @classmethod
    def _params_from(cls, value: str | None) -> str | None:
        if value is not None and re.match(PARAMS_FROM, value) is None:
            raise ValueError(f"expected search.NAME, naming a search of the recipe, got {value!r}")
        return value


class Environment(_Model):
    """The software environment the steps run in. Its lock file's hash enters every fingerprint."""

    # the rule of _one_lock, for editors
    model_config = ConfigDict(json_schema_extra={"not": {"required": ["pipfile", "requirements"]}})

    python: str | None = Field(
        default=None,
        pattern=r"^3\.\d+(\.\d+)?$",
        description="Python version the steps are meant to run with (`3.11`).",
        examples=["3.11"],
    )
    pipfile: str | None = Field(
        default=None,
        min_length=1,
        description="Path of a Pipfile; its Pipfile.lock beside it pins the environment.",
        examples=["Pipfile"],
    )
    requirements: str | None = Field(
        default=None,
        min_length=1,
        description="Path of a fully pinned requirements (lock) file, with hashes (`pip-compile "
        "--generate-hashes` or `uv pip compile --generate-hashes`; `mlbuild env lock` writes it "
        "from `requirements.in` beside it).",
        examples=["requirements.lock"],
    )
    isolated: bool = Field(
        default=False,
        description="Run the steps in the environment `mlbuild env build` makes from the lock "
        "(its interpreter first on PATH, no user site-packages) instead of the caller's, so a "
        "step's result cannot depend on what happens to be installed. `mlbuild run --isolated` "
        "does the same for one run.",
    )

    @model_validator(mode="after")
    def _one_lock(self) -> Environment:
        if self.pipfile and self.requirements:
            raise ValueError("give either 'pipfile' or 'requirements', not both")
        return self


DATASET_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


class DataImport(_Model):
    """Data imported from another git repository, as `dvc import` does."""

    repo: str = Field(
        min_length=1,
        description="URL or local path of the git repository (tracked with DVC or plain git) that "
        "holds the data.",
        examples=["https://github.com/org/datasets", "../data-registry"],
    )
    rev: str | None = Field(
        default=None,
        min_length=1,
        description="Tag, branch or commit to import from (default: the default branch). The "
        "commit it resolves to is recorded as part of the data version.",
        examples=["v1.2.0"],
    )
    path: str = Field(
        min_length=1,
        description="Path of the file or directory inside that repository.",
        examples=["datasets/iris.csv"],
    )


class Dataset(_Model):
    """A named dataset: DVC-tracked in this repository, imported from another, or a plain path."""

    # the rule of _consistent, for editors
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["import", "dvc"],
                "properties": {
                    "dvc": {"const": False, "description": "An import is fetched through DVC."}
                },
            }
        }
    )

    path: str = Field(
        min_length=1,
        description="Where the data lives in this repository. Steps name the dataset in `deps` as "
        "`data:NAME` or by this path.",
        examples=["data/raw/train.csv", "data/images/"],
    )
    description: str | None = Field(default=None, description="What the data is, for humans.")
    dvc: bool | None = Field(
        default=None,
        description="`true`: the path must be tracked by DVC (a `.dvc` file beside it or an output "
        "in `dvc.lock`), and its version is DVC's hash. `false`: a plain path hashed by mlbuild. "
        "Unset: DVC when DVC tracks it, else plain.",
    )
    remote: str | None = Field(
        default=None,
        min_length=1,
        description="DVC remote to fetch the data from and push it to (default: DVC's default "
        "remote).",
        examples=["storage"],
    )
    import_: DataImport | None = Field(
        default=None,
        alias="import",
        description="Import the data from another git repository at a revision instead of "
        "tracking it here.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        if self.import_ is not None and self.dvc is False:
            raise ValueError("an imported dataset is fetched through DVC; remove 'dvc: false'")
        return self


PARAMS_FILE = r"^[^*?]*[^/]\.(yaml|yml|json|toml)$"
PARAMS_FILE_HINT = "a params file ending in .yaml, .yml, .json or .toml"

ParamsFile = Annotated[
    str,
    Field(
        pattern=PARAMS_FILE,
        description="A plain params file (YAML, JSON or TOML) relative to the recipe, as DVC's "
        "`params.yaml`. Its top-level keys are parameters; overrides of them are written into "
        "the file before the steps run.",
        examples=["params.yaml"],
    ),
]


class ParamSources(_Model):
    """Parameters from plain params files, with a Hydra config tree or inline values."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        # the rules of _consistent, for editors
        json_schema_extra={
            "anyOf": [{"required": ["config_dir"]}, {"required": ["files"]}],
            "not": {"required": ["config_dir", "values"]},
            "dependentRequired": {"config_name": ["config_dir"]},
        },
    )

    files: list[ParamsFile] = Field(
        default_factory=list,
        min_length=1,
        description="Plain params files (YAML, JSON or TOML; DVC's `params.yaml` convention), "
        "read as data: no `${...}` interpolation. Their top-level keys are parameters and must "
        "not repeat across sources. An override of one of their keys is written into the file "
        "(atomically, the rest of the file kept) before the steps run, so a step that reads the "
        "file itself sees exactly the values its fingerprint holds; the file stays edited, as "
        "`dvc exp run -S` leaves `params.yaml`. A step that lists the file in `deps` re-runs "
        "when any of it changes.",
        examples=[["params.yaml"]],
    )
    config_dir: str | None = Field(
        default=None,
        min_length=1,
        description="Hydra config directory, relative to the recipe, composed with Hydra's "
        "compose API (defaults lists, config groups, `${...}` and `${hydra:...}` "
        "interpolation).",
        examples=["conf"],
    )
    config_name: str = Field(
        default="config",
        min_length=1,
        description="Primary config file in `config_dir`, without `.yaml`.",
        examples=["config"],
    )
    values: dict[str, Any] | None = Field(
        default=None,
        description="Parameters written inline, beside the params files (a Hydra tree keeps its "
        "own defaults: give either `values` or `config_dir`).",
        examples=[{"seed": 1}],
    )

    @model_validator(mode="after")
    def _consistent(self) -> ParamSources:
        if self.config_dir is not None and self.values is not None:
            raise ValueError(
                "give either 'values' or a Hydra 'config_dir', not both; keep default values "
                "in the Hydra config tree"
            )
        if self.config_dir is None and "config_name" in self.model_fields_set:
            raise ValueError("'config_name' names the primary config in 'config_dir'; add it")
        return self


_SOURCE_KEYS = ("config_dir", "files")


def _params_shape(value: Any) -> str | None:
    if isinstance(value, str):
        return "#file"
    if isinstance(value, list):
        return "#files"
    if isinstance(value, dict):
        return "#sources" if any(key in value for key in _SOURCE_KEYS) else "#inline"
    return None


InlineParams = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "not": {"anyOf": [{"required": [key]} for key in _SOURCE_KEYS]},
            "description": "Parameters written inline as a (nested) mapping.",
        }
    ),
]

Params = Annotated[
    Annotated[ParamsFile, Tag("#file")]
    | Annotated[list[ParamsFile], Field(min_length=1), Tag("#files")]
    | Annotated[ParamSources, Tag("#sources")]
    | Annotated[InlineParams, Tag("#inline")],
    Discriminator(
        _params_shape,
        custom_error_type="params_shape",
        custom_error_message="expected a params file (params.yaml), a list of them, a mapping "
        "of parameters, or {files, config_dir, config_name, values}",
    ),
]


# the tensor datatypes of the Open Inference Protocol (v2)
Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]

TENSOR_NAME = r"^[A-Za-z_][A-Za-z0-9_.\-\[\]]*$"
CLASS_REF = r"^[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$"


class TensorSpec(_Model):
    """One named input or output tensor of a model."""

    name: str = Field(
        pattern=TENSOR_NAME,
        description="The tensor's name: a column name for tabular inputs (`petal_length`), or "
        "any name for one whole-matrix input (`input-0`).",
        examples=["petal_length", "input-0", "label"],
    )
    datatype: Datatype = Field(
        description="Element type, as the Open Inference Protocol names it (`FP64`, `INT64`, "
        "`BYTES` for strings, …).",
        examples=["FP64", "INT64"],
    )
    shape: list[Annotated[int, Field(ge=-1)]] = Field(
        min_length=1,
        description="Dimensions; -1 is any size. The first is the batch (rows): `[-1]` for a "
        "column, `[-1, 20]` for rows of 20 features.",
        examples=[[-1], [-1, 20]],
    )


class Signature(_Model):
    """The model's inputs and outputs, checked on every request."""

    inputs: list[TensorSpec] = Field(
        min_length=1,
        description="The input tensors: one per column (shape `[-1]`), or one matrix "
        "(shape `[-1, N]`).",
    )
    outputs: list[TensorSpec] = Field(min_length=1, description="The output tensors.")


def _signature_shape(value: Any) -> str | None:
    if isinstance(value, str):
        return "#str"
    if isinstance(value, dict):
        return "#map"
    return None


SignatureRef = Annotated[
    Annotated[str, Field(min_length=1), Tag("#str")] | Annotated[Signature, Tag("#map")],
    Discriminator(
        _signature_shape,
        custom_error_type="signature_shape",
        custom_error_message="expected the path of a signature JSON file (a step output) or a "
        "mapping with 'inputs' and 'outputs'",
    ),
]


SAMPLE_FILE = r"^.*\.(csv|jsonl|ndjson)$"


class ModelCheck(_Model):
    """The model's servable check: a cached step, `model:check`, that loads the model from the
    cache exactly as `mlbuild serve` does and predicts on a sample."""

    sample: str | None = Field(
        default=None,
        pattern=SAMPLE_FILE,
        description="Rows to predict on, as `mlbuild predict` reads them: a `.csv` file with a "
        "header row, or `.jsonl` (one object per row). A file of the repository or a step "
        "output. Without it the model is loaded and checked against its signature only.",
        examples=["data/sample.csv"],
    )
    output: str | None = Field(
        default=None,
        pattern=SAMPLE_FILE,
        description="Write the predictions to this file (an output of `model:check`, cached), "
        "in the sample's format. The first rows are also kept with the step's result "
        "(`mlbuild run --json`).",
        examples=["reports/check.csv"],
    )
    deps: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Other files the model's code reads (modules `class:` imports), so the check "
        "re-runs when they change. The artifacts, the signature, the class's file and the "
        "sample are deps already.",
        examples=[["src/features.py"]],
    )
    timeout: Timeout | None = Field(
        default=None,
        description="Fail the check after this long (`90`, `5m`).",
        examples=["5m"],
    )


class ServingModel(_Model):
    """The model that ``mlbuild serve`` and ``mlbuild predict`` load: artifacts, code, signature."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        # the rules of _one_loader, for editors
        json_schema_extra={
            "oneOf": [
                {"required": ["flavor"], "not": {"required": ["class"]}},
                {"required": ["class"], "not": {"required": ["flavor"]}},
            ],
            "if": {
                "required": ["flavor"],
                "properties": {
                    "flavor": {"const": "sklearn", "description": "The sklearn flavor."}
                },
            },
            "then": {
                "properties": {
                    "artifacts": {
                        "required": ["model"],
                        "description": "The sklearn flavor loads the artifact named `model`.",
                    }
                }
            },
        },
    )

    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Name the server publishes the model under (`/v2/models/NAME`). Default: "
        "the recipe's `name`.",
        examples=["iris"],
    )
    artifacts: dict[
        Annotated[str, Field(pattern=ENV_NAME)], Annotated[str, Field(min_length=1)]
    ] = Field(
        min_length=1,
        description="The files the model needs, by name. Each must be a step output: "
        "mlbuild loads them only from its own cache.",
        examples=[{"model": "model/model.joblib", "featurizer": "model/featurizer.json"}],
    )
    flavor: Literal["sklearn"] | None = Field(
        default=None,
        description="A built-in loader: `sklearn` loads the `model` artifact (a joblib or skops "
        "file) and calls its `predict`. Give either `flavor` or `class`.",
        examples=["sklearn"],
    )
    class_: str | None = Field(
        default=None,
        alias="class",
        pattern=CLASS_REF,
        description="Your own servable, `FILE.py:Class`: a class with `load(artifacts)` (a dict "
        "of artifact name → path) and `predict(inputs)` (a dict of input name → numpy array, "
        "returning a dict of output name → array). Give either `flavor` or `class`.",
        examples=["src/serve.py:Model"],
    )
    signature: SignatureRef = Field(
        description="The inputs and outputs (names, datatypes, shapes): the path of a JSON file "
        "a step writes (`mlbuild.serve.infer_signature(...)` at training time), or declared here.",
        examples=[
            "model/signature.json",
            {
                "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
                "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
            },
        ],
    )

    check: ModelCheck | None = Field(
        default=None,
        description="Check on every `mlbuild run` that the model loads from the cache and "
        "predicts: a step named `model:check`, cached like any other, that re-runs when an "
        "artifact, the sample or the model's code changes. `{}` checks loading only.",
        examples=[{"sample": "data/sample.csv", "output": "reports/check.csv"}],
    )

    @model_validator(mode="after")
    def _one_loader(self) -> ServingModel:
        if (self.flavor is None) == (self.class_ is None):
            raise ValueError("give either 'flavor' or 'class', not both or neither")
        if self.flavor == "sklearn" and "model" not in self.artifacts:
            raise ValueError("the sklearn flavor loads the artifact named 'model'; add it")
        return self


class Store(_Model):
    """Where this project's runs are recorded, when not in the local ``.mlbuild/runs.db``."""

    url: str = Field(
        min_length=1,
        # the rule of _no_password, for editors
        json_schema_extra={"not": {"pattern": r"^[^:/]+://[^/@]*:[^/@]+@"}},
        description="Database URL of the run store a team shares: `postgresql://USER@HOST/DB` "
        "(or `sqlite:///PATH`). Never a password: ml.yaml is committed; use `PGPASSWORD` or "
        "`~/.pgpass`. `MLBUILD_STORE` overrides it.",
        examples=["postgresql://mlbuild@runs.example.com/mlbuild"],
    )

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str) -> str:
        from urllib.parse import urlsplit

        if urlsplit(value).password:
            raise ValueError(
                "must not hold a password (ml.yaml is committed); put it in PGPASSWORD or ~/.pgpass"
            )
        return value


# option names that hold credentials: ml.yaml is committed, so they come from the environment
_CREDENTIAL_OPTION = (
    r"secret|password|passwd|passphrase|token|credential|account_key|access_key|"
    r"connection_string|private_key|^key$|^sas"
)


class CacheSettings(_Model):
    """A remote cache that CI and laptops share: results built anywhere are restored everywhere."""

    remote: str = Field(
        min_length=1,
        json_schema_extra={
            "pattern": SCHEMA_PATTERN,
            "not": {"pattern": r"^[^:/]+://[^/@]*:[^/@]+@"},  # the rule of _address, for editors
        },
        description="Where results are shared: a directory (`/mnt/team-cache`, relative to the "
        "recipe), an fsspec URL (`s3://BUCKET/PREFIX` — AWS, or Ceph RGW / MinIO with "
        "`options: {endpoint_url: …}` or `AWS_ENDPOINT_URL` —, `gs://`, `azure://`, `sftp://`) "
        "or `dvc://NAME`, a DVC remote with its URL and credentials from DVC's config. "
        "`mlbuild run` restores what it finds there and uploads what it builds. Credentials "
        "come from the storage's own conventions, never from this file. "
        "`MLBUILD_REMOTE_CACHE` overrides it.",
        examples=["s3://ml-cache/iris", "/mnt/team-cache", "dvc://storage"],
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        json_schema_extra={"propertyNames": {"not": {"pattern": _CREDENTIAL_OPTION}}},
        description="Options of the fsspec filesystem for a URL remote, such as `endpoint_url` "
        "for Ceph RGW or MinIO. Never credentials (keys, secrets, tokens, passwords).",
        examples=[{"endpoint_url": "https://rgw.example.com"}],
    )

    @field_validator("remote")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_remote(value)
        return value

    @field_validator("options")
    @classmethod
    def _no_credentials(cls, value: dict[str, Any]) -> dict[str, Any]:
        found = _credential_keys(value, "")
        if found:
            raise ValueError(
                f"'{found[0]}' would put a credential in ml.yaml, which is committed; give it "
                "through the storage's environment variables or config files instead"
            )
        return value

    @model_validator(mode="after")
    def _options_for_urls(self) -> CacheSettings:
        if self.options and parse_remote(self.remote).kind != "fsspec":
            raise ValueError("options apply to an fsspec URL remote (s3://, gs://, …) only")
        return self


def _credential_keys(value: object, prefix: str) -> list[str]:
    if isinstance(value, dict):
        found = []
        for key, inner in value.items():
            path = f"{prefix}{key}"
            if re.search(_CREDENTIAL_OPTION, str(key).lower()):
                found.append(path)
            found += _credential_keys(inner, f"{path}.")
        return found
    if isinstance(value, list):
        return [k for item in value for k in _credential_keys(item, prefix)]
    return []


class Recipe(_Model):
    """An ``ml.yaml`` recipe: everything needed to go from data to a trained, evaluated model."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="mlbuild recipe (ml.yaml)",
    )

    schema_version: Literal[1] = Field(
        description="Version of the recipe format. This mlbuild reads version 1.", examples=[1]
    )
    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="Name of the project: lowercase letters, digits, `.`, `_`, `-`.",
        examples=["iris-classifier"],
    )
    description: str | None = Field(default=None, description="What the project is, for humans.")
    environment: Environment | None = Field(
        default=None, description="The Python version and lock file the steps run with."
    )
    params: Params | None = Field(
        default=None,
        description="Parameters: a params file (`params.yaml`, DVC's convention) or a list of "
        "them, an inline mapping, a Hydra config tree (`{config_dir: conf, config_name: "
        "config}`), or files together with a Hydra tree or inline values (`{files: "
        "[params.yaml], config_dir: conf}`). Override them on the command line with Hydra's "
        "syntax: `mlbuild run train.lr=0.01 model=xgb`.",
        examples=[
            "params.yaml",
            {"train": {"lr": 0.1}},
            {"config_dir": "conf", "config_name": "config"},
            {"files": ["params.yaml"], "values": {"seed": 1}},
        ],
    )
    overrides: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Default overrides in Hydra's syntax (`model=tree`, `trainer.max_epochs=1`), "
        "applied before the ones given on the command line, which win.",
        examples=[["model=tree", "+trainer.fast_dev_run=true"]],
    )
    data: dict[Annotated[str, Field(pattern=DATASET_NAME)], Dataset] = Field(
        default_factory=dict,
        description="Named datasets. Their versions (DVC's hashes, or content hashes for plain "
        "paths) enter the fingerprint of every step that reads them and are recorded with every "
        "run; missing data is fetched through DVC before a step that needs it runs.",
        examples=[{"train": {"path": "data/train.csv"}}],
    )
    steps: dict[Annotated[str, Field(pattern=STEP_NAME)], Step] = Field(
        min_length=1,
        description="The pipeline's steps by name. Order does not matter: deps, outs and needs "
        "decide it.",
    )
    model: ServingModel | None = Field(
        default=None,
        description="The model to serve: its artifacts (step outputs), how to load it (a "
        "built-in flavor or your class) and its signature. `mlbuild serve` serves it; "
        "`mlbuild predict FILE` scores a file with it.",
    )
    store: Store | None = Field(
        default=None,
        description="The run store every run is recorded in (default: `.mlbuild/runs.db`).",
    )
    package: PackageSection | None = Field(
        default=None,
        description="How the model ships: a bundle `mlbuild serve BUNDLE` serves with no "
        "repository, and a Docker image `mlbuild publish` pushes as an immutable version.",
    )
    search: dict[Annotated[str, Field(pattern=SEARCH_NAME)], Search] = Field(
        default_factory=dict,
        description="Hyperparameter searches by name, run with `mlbuild search NAME`: Optuna "
        "samples the space, each trial is a cached, recorded run of the target step.",
        examples=[
            {
                "hpo": {
                    "step": "evaluate",
                    "objective": {"accuracy": "maximize"},
                    "space": {
                        "train.lr": {"type": "float", "low": 0.0001, "high": 0.1, "log": True}
                    },
                    "n_trials": 30,
                }
            }
        ],
    )
    executors: Executors | None = Field(
        default=None,
        description="Settings of the executors steps may run on (a step's `executor:`, "
        "`mlbuild run --executor NAME`): `container: {image: …}`, `clean: {…}`.",
        examples=[{"container": {"image": "mlbuild-base:bookworm", "network": "none"}}],
    )
    tests: dict[Annotated[str, Field(pattern=TEST_NAME)], Test] = Field(
        default_factory=dict,
        description="The model's tests, by name: release gates that `mlbuild test` runs as "
        "cached steps (a test runs again only when the model or the test changed) and that "
        "`package` and `publish` require to have passed for the exact model. Kinds: "
        "`metric`, `cases`, `invariance`, `directional`, `slices`, `latency`, `serving`, "
        "`pytest`.",
        examples=[{"accuracy": {"kind": "metric", "metric": "accuracy", "min": 0.9}}],
    )
    cache: CacheSettings | None = Field(
        default=None,
        description="A remote cache shared by CI and laptops (`cache: {remote: URL}`): steps "
        "are looked up locally, then remotely, and what runs is uploaded.",
    )
