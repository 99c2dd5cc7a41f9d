"""The recipe's ``model:`` section, as ``mlbuild validate`` checks it against the steps."""

from __future__ import annotations

from tests.conftest import Workspace

RECIPE = """\
schema_version: 1
name: demo
steps:
  train:
    cmd: python train.py
    outs: [model/model.joblib, model/signature.json]
model:
  artifacts: {model: model/model.joblib}
  flavor: sklearn
  signature: model/signature.json
"""


def test_a_model_built_by_a_step_is_valid(ws: Workspace) -> None:
    done = ws.recipe(RECIPE).cli("validate")
    assert (done.returncode, done.stdout) == (0, "ml.yaml: valid (1 step: train)\n")


def test_a_no_op_run_loads_neither_pydantic_nor_the_server_stack(ws: Workspace) -> None:
    ws.recipe(
        RECIPE.replace(
            "python train.py", "mkdir -p model && touch model/model.joblib model/signature.json"
        )
    )
    assert ws.cli("run").returncode == 0
    probe = (
        "import sys\n"
        "from mlbuild.cli.main import main\n"
        "code = main(['run', '-q'])\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "heavy = {'pydantic', 'uvicorn', 'orjson', 'numpy', 'sklearn', 'joblib', 'yaml'} & top\n"
        "print(code, sorted(heavy), 'mlbuild.serve' in sys.modules)\n"
    )
    done = ws.cli_python(probe)
    assert done.stdout.strip().splitlines()[-1] == "0 [] False"


def test_artifacts_must_be_step_outputs(ws: Workspace) -> None:
    ws.recipe(RECIPE.replace("{model: model/model.joblib}", "{model: downloaded.pkl}"))
    done = ws.cli("validate")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: ml.yaml:8:22: model.artifacts.model: 'downloaded.pkl' is not an output of any "
        "step; add it to the outs of the step that writes it (mlbuild serves only artifacts it "
        "built and cached)\n"
        "    8 |   artifacts: {model: downloaded.pkl}\n"
        "      |                      ^\n"
        "1 problem in ml.yaml\n"
    )


def test_a_signature_file_must_be_a_step_output_too(ws: Workspace) -> None:
    ws.recipe(RECIPE.replace("signature: model/signature.json", "signature: sig.json"))
    done = ws.cli("validate")
    assert done.returncode == 2
    assert "model.signature: 'sig.json' is not an output of any step" in done.stderr


def test_a_misspelt_model_key_gets_a_suggestion(ws: Workspace) -> None:
    ws.recipe(RECIPE.replace("flavor: sklearn", "flavr: sklearn"))
    done = ws.cli("validate")
    assert "model.flavr: unknown key 'flavr' (did you mean 'flavor'?); expected one of: " in (
        done.stderr
    )
    assert "artifacts, check, class, flavor, name, signature" in done.stderr


def test_serve_without_a_model_section_says_what_to_add(ws: Workspace) -> None:
    ws.recipe(RECIPE.split("model:", maxsplit=1)[0])
    done = ws.cli("serve")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: ml.yaml has no model: section; declare the model's artifacts, its flavor or "
        "class and its signature there (see `mlbuild schema`)\n"
    )


def test_serve_before_the_first_run_names_the_command_that_builds_the_model(
    ws: Workspace,
) -> None:
    done = ws.recipe(RECIPE).cli("serve")
    assert done.returncode == 1
    assert done.stderr == (
        "mlbuild: the model is not built for the current recipe and params: step 'train' would "
        "run (never run in this workspace); run `mlbuild run train` first\n"
    )


def test_an_artifact_below_a_file_output_is_refused_and_the_object_left_alone(
    ws: Workspace,
) -> None:
    ws.recipe(
        RECIPE.replace("python train.py", "mkdir -p model && echo m > model/model.joblib")
        .replace("outs: [model/model.joblib, model/signature.json]", "outs: [model/model.joblib]")
        .replace("{model: model/model.joblib}", "{model: model/model.joblib/inner}")
        .replace(
            "signature: model/signature.json",
            "signature: {inputs: [{name: x, datatype: FP64, shape: [-1]}], "
            "outputs: [{name: y, datatype: FP64, shape: [-1]}]}",
        )
    )
    assert ws.cli("run").returncode == 0
    ws.gen({"rows.csv": "x\n1\n"})
    done = ws.cli("predict", "rows.csv")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: model artifact model/model.joblib/inner is not in the output model/model.joblib "
        "that step 'train' wrote; check the path in model.artifacts\n",
    )
    assert not (ws.root / ".mlbuild/cache/quarantine").exists()
