"""A tiny model repository for the tests of model tests: two shell steps and a numpy servable.

``train`` writes the model (a weight, from the params) and ``evaluate`` its metrics (from the
params too), so a test changes the model or a metric with an override. The servable scores
``weight * x + n``, labels it, and names a size — one FP64, one INT64 and one BYTES output — and
can be slowed down (``TOY_DELAY``) or made to answer differently in a server process
(``TOY_SKEW``), as train/serve skew would.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.test_example_iris import STEP_ENV

TOY_RECIPE = """\
schema_version: 1
name: toy
params: {weight: 2.0, accuracy: 0.9, loss: 0.2}
steps:
  train:
    cmd: |-
      echo '{"weight": ${params.weight}}' > model.json
    params: [weight]
    outs: [model.json]
  evaluate:
    cmd: |-
      echo '{"accuracy": ${params.accuracy}, "loss": ${params.loss}, "model": "toy"}' > metrics.json
    deps: [model.json]
    params: [accuracy, loss]
    metrics: [metrics.json]
model:
  name: toy
  artifacts: {weights: model.json}
  class: src/toy.py:Toy
  signature:
    inputs:
      - {name: x, datatype: FP64, shape: [-1]}
      - {name: n, datatype: INT64, shape: [-1]}
      - {name: colour, datatype: BYTES, shape: [-1]}
    outputs:
      - {name: score, datatype: FP64, shape: [-1]}
      - {name: label, datatype: INT64, shape: [-1]}
      - {name: size, datatype: BYTES, shape: [-1]}
tests:
"""

TOY_PY = """\
import json
import os
import sys
import time

import numpy as np


class Toy:
    def load(self, artifacts):
        with open(artifacts["weights"]) as handle:
            self.weight = json.load(handle)["weight"]
        self.delay = float(os.environ.get("TOY_DELAY", "0"))

    def predict(self, inputs):
        if self.delay:
            time.sleep(self.delay)
        # train/serve skew on request: the server process has uvicorn loaded, mlbuild test not
        skew = 0.5 if os.environ.get("TOY_SKEW") and "uvicorn" in sys.modules else 0.0
        score = self.weight * inputs["x"] + inputs["n"] + skew
        return {
            "score": score,
            "label": (score > 1).astype("int64"),
            "size": np.where(score > 1, "big", "small").astype(object),
        }
"""

# weight 2: score = 2x + n
CASES_CSV = """\
case,x,n,colour,score,label,size
zero,0.0,0,red,0.0,0,small
one,0.5,0,red,1.0,0,small
two,1.0,0,blue,2.0,1,big
shifted,1.0,3,blue,5.0,1,big
"""


def toy_recipe(tests: str) -> str:
    """The toy recipe with ``tests`` (YAML, indented by two spaces) as its tests section."""
    body = "\n".join(f"  {line}" if line else line for line in tests.strip("\n").splitlines())
    return TOY_RECIPE + body + "\n"


@pytest.fixture
def toy(ws: Workspace) -> Workspace:
    """The toy repository with a cases file; each test writes its own tests section."""
    return ws.gen({"src": {"toy.py": TOY_PY}, "tests": {"cases.csv": CASES_CSV}})


def mlbuild(ws: Workspace, *args: str, env: dict[str, str] | None = None) -> Any:
    """``mlbuild ARGS`` in ``ws``, with the interpreter that has mlbuild first on PATH."""
    done: subprocess.CompletedProcess[str] = ws.cli(*args, env={**STEP_ENV, **(env or {})})
    return done


def run_json(ws: Workspace, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``mlbuild test --json ARGS``: the document, whatever the exit code (it is in ``code``)."""
    done = mlbuild(ws, "test", "--json", *args, env=env)
    try:
        found: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"no JSON (exit {done.returncode}): {done.stderr}") from None
    found["code"] = done.returncode
    return found


def results(document: dict[str, Any]) -> dict[str, str]:
    """``{"tests": [{"name": "a", "status": "passed", "cached": true}]}`` → ``{"a": "passed
    (cached)"}``."""
    return {
        t["name"]: t["status"] + (" (cached)" if t.get("cached") else "") for t in document["tests"]
    }
