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
    assert "artifacts, class, flavor, name, signature" in done.stderr
