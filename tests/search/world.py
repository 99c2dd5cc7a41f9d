"""A small model repository to search: ``prep`` makes data, ``train`` reads the params and
writes ``metrics.json``. Each execution of a step leaves a marker file in ``MARKERS`` (outside the
workspace: trials run in worker copies), so tests count what really ran."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.conftest import Workspace

PREP = """\
    import os, pathlib, uuid, mlbuild
    n = mlbuild.params()["prep"]["n"]
    pathlib.Path("data.txt").write_text(str(n))
    pathlib.Path(os.environ["MARKERS"], f"prep-{uuid.uuid4().hex}").touch()
    """

# score peaks at lr = 10**-1.5 and depth = 5; reports it at each of 3 epochs when REPORT is set;
# HOLD (a file path) makes the first trial with depth 1 wait until the file is gone
TRAIN = """\
    import json, math, os, pathlib, time, uuid, mlbuild
    p = mlbuild.params()["train"]
    n = int(pathlib.Path("data.txt").read_text())
    score = n - (math.log10(p["lr"]) + 1.5) ** 2 - (p["depth"] - 5) ** 2 / 10
    pathlib.Path(os.environ["MARKERS"], f"train-{uuid.uuid4().hex}").write_text(
        json.dumps({"lr": p["lr"], "depth": p["depth"]}))
    hold = os.environ.get("HOLD")
    if hold and os.path.exists(hold):
        pathlib.Path(hold + ".started").touch()
        while os.path.exists(hold):
            time.sleep(0.1)
    if os.environ.get("REPORT"):
        for epoch in range(3):
            mlbuild.report(score - (2 - epoch), step=epoch)
    json.dump({"score": score, "nested": {"loss": -score}}, open("metrics.json", "w"))
    """

RECIPE = """\
schema_version: 1
name: toy
params: {{train: {{lr: 0.1, depth: 3}}, prep: {{n: 5}}}}
steps:
  prep:
    cmd: python prep.py
    deps: [prep.py]
    params: [prep.n]
    outs: [data.txt]
  train:
    cmd: python train.py
    deps: [train.py, data.txt]
    params: ["train.*"]
    metrics: [metrics.json]
search:
  hpo:
    step: train
    objective: {{score: maximize}}
{search}
"""

SPACE = """\
    space:
      train.lr: {type: float, low: 0.001, high: 1.0, log: true}
      train.depth: {type: int, low: 1, high: 8}
"""


def toy(ws: Workspace, search: str, markers: Path) -> dict[str, str]:
    """Write the toy repository with ``search`` (lines under ``search.hpo``); returns the env
    its commands need."""
    markers.mkdir(exist_ok=True)
    ws.recipe(RECIPE.format(search=search.rstrip("\n"))).gen({"prep.py": PREP, "train.py": TRAIN})
    return {"MARKERS": str(markers)}


def ran(markers: Path, step: str) -> list[dict[str, Any]]:
    """What each execution of ``step`` recorded (train: its params)."""
    found = sorted(markers.glob(f"{step}-*"), key=os.path.getmtime)
    return [json.loads(p.read_text() or "{}") for p in found]


def show(ws: Workspace, env: dict[str, str], *args: str) -> dict[str, Any]:
    done = ws.cli("search", "show", "hpo", "--json", "--top", "1000", *args, env=env)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def trials_by_number(report: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(report["top"], key=lambda t: t["number"])
