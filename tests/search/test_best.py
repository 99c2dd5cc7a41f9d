"""Best params flowing downstream: a step declaring ``params_from: search.hpo`` runs with the best
trial's params, re-runs only when they change, and ``plan`` says why. Real searches, real runs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Workspace
from tests.search.world import toy

# a final training on the best params, after the search's own step
FINAL = """\
  final:
    cmd: python final.py
    deps: [final.py, data.txt]
    params: ["train.*"]
    params_from: search.hpo
    outs: [final.json]
search:"""

FINAL_PY = """\
    import json, os, pathlib, uuid, mlbuild
    p = mlbuild.params()["train"]
    json.dump(p, open("final.json", "w"))
    pathlib.Path(os.environ["MARKERS"], f"final-{uuid.uuid4().hex}").write_text(json.dumps(p))
    """


def _grid(depths: list[int]) -> str:
    return f"    space:\n      train.depth: {depths}\n    sampler: grid\n"


def _with_final(ws: Workspace, search: str, markers: Path) -> dict[str, str]:
    env = toy(ws, search, markers)
    ws.gen({"ml.yaml": ws.read("ml.yaml").replace("search:", FINAL, 1), "final.py": FINAL_PY})
    return env


def _plan(ws: Workspace, env: dict[str, str]) -> list[str]:
    """Why ``plan final`` would run it."""
    done = ws.cli("plan", "--json", "final", env=env)
    assert done.returncode == 0, done.stderr
    reasons: list[str] = json.loads(done.stdout)[0]["steps"][-1]["reasons"]
    return reasons


def _finals(markers: Path) -> int:
    return len(list(markers.glob("final-*")))


def test_a_step_takes_the_best_params_and_re_runs_only_when_they_change(
    ws: Workspace, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    env = _with_final(ws, _grid([1, 2]), markers)
    # no search has run: `run final` would run the search's step first
    assert ws.cli("run", "train", env=env).returncode == 0
    assert _plan(ws, env) == ["runs after 'search:hpo', whose best params may change"]
    searched = ws.cli("run", "search:hpo", env=env)
    assert searched.returncode == 0, searched.stderr
    best = json.loads((ws.root / ".mlbuild/search/hpo/best.json").read_text())
    assert best["params"] == {"train.depth": 2} and best["trial"] in (0, 1)
    assert _plan(ws, env) == ["never run in this workspace"]
    done = ws.cli("run", "final", env=env)
    assert done.returncode == 0, done.stderr
    # the recipe says depth 3; the step ran with the search's best, the rest as the recipe says
    assert json.loads(ws.read("final.json")) == {"lr": 0.1, "depth": 2}
    assert _finals(markers) == 1
    # the same best params: nothing to do
    assert ws.cli("search", "hpo", env=env).returncode == 0
    assert ws.cli("run", "final", env=env).returncode == 0
    assert _finals(markers) == 1
    # a wider space finds a better depth: plan says which best param changed, run re-runs
    ws.gen({"ml.yaml": ws.read("ml.yaml").replace("[1, 2]", "[1, 2, 5]")})
    assert ws.cli("run", "search:hpo", env=env).returncode == 0
    assert _plan(ws, env) == ["best params of search `hpo` changed: train.depth 2 → 5"]
    text = ws.cli("plan", "final", env=env).stdout
    assert "final       run     best params of search `hpo` changed: train.depth 2 → 5" in text
    assert ws.cli("run", "final", env=env).returncode == 0
    assert json.loads(ws.read("final.json")) == {"lr": 0.1, "depth": 5}
    assert _finals(markers) == 2
    # the run's record holds the recipe's params, and names the best params the step took
    runs = json.loads(ws.cli("runs", "list", "--json", env=env).stdout)
    newest = max(runs, key=lambda r: r["started"])
    best = json.loads((ws.root / ".mlbuild/search/hpo/best.json").read_text())
    assert newest["tags"] == {
        "params_from.final": f"search hpo, trial {best['trial']} (run {best['run_id'][:8]}): "
        "train.depth=5"
    }


def test_best_params_that_no_longer_fit_or_are_damaged_stop_that_step_only(
    ws: Workspace, tmp_path: Path
) -> None:
    env = _with_final(ws, _grid([1, 2]), tmp_path / "markers")
    best = ws.root / ".mlbuild/search/hpo/best.json"
    best.parent.mkdir(parents=True)
    cases = {
        b"{not json": f"{best} is damaged; run `mlbuild search hpo` to write it again",
        b'{"params": {}}': f"{best} is damaged; run `mlbuild search hpo` to write it again",
        b'{"params": {"train.depth": NaN}}': f"{best} is damaged",
        b'{"params": {"train.depth": [1]}}': f"{best} is damaged",
        b"\xff\xfe": f"{best} is damaged",
        # keys are put into overrides: only a searched key's shape, never Hydra syntax
        b'{"params": {"train.depth": 1, "+train.extra": 2}}': f"{best} is damaged",
        b'{"params": {"train.depth": 1, "~train.lr": null}}': f"{best} is damaged",
        b'{"params": {"train.depth=1,2 ": 1}}': f"{best} is damaged",
        b'{"params": {"train.gone": 1}}': (
            "the best params of search 'hpo' (train.gone=1) do not fit the recipe: "
        ),
        b'{"params": {"prep.n": 7}}': (
            "step 'final' reads none of the params search 'hpo' varies (prep.n); list them in "
            "its `params`"
        ),
    }
    for content, message in cases.items():
        best.write_bytes(content)
        done = ws.cli("run", "final", env=env)
        assert done.returncode == 2, (content, done.stdout)
        assert "steps.final.params_from: " + message in done.stderr, (content, done.stderr)
        assert "Traceback" not in done.stderr
    assert ws.cli("run", "train", env=env).returncode == 0


def test_a_step_that_cannot_take_best_params_is_refused_at_its_line(
    ws: Workspace, tmp_path: Path
) -> None:
    env = _with_final(ws, _grid([1, 2]), tmp_path / "markers")
    recipe = ws.read("ml.yaml")
    cases = {
        "    params_from: search.hpp\n": (
            "ml.yaml:19:18: steps.final.params_from: no search named 'hpp' (did you mean "
            "'hpo'?); searches: hpo"
        ),
        "    params_from: hpo\n": (
            "ml.yaml:19:18: steps.final.params_from: expected search.NAME, naming a search of "
            "the recipe, got 'hpo'"
        ),
    }
    for line, message in cases.items():
        ws.gen({"ml.yaml": recipe.replace("    params_from: search.hpo\n", line)})
        done = ws.cli("plan", env=env)
        assert done.returncode == 2, line
        assert done.stderr.startswith(f"mlbuild: {message}"), (line, done.stderr)
    # the search's own step, or one it depends on, would change what its trials measure
    for step, where in (("train", "is the step of"), ("prep", "runs before the step of")):
        ws.gen(
            {
                "ml.yaml": recipe.replace("    params_from: search.hpo\n", "").replace(
                    f"  {step}:\n", f"  {step}:\n    params_from: search.hpo\n"
                )
            }
        )
        done = ws.cli("plan", env=env)
        assert done.returncode == 2, step
        assert (
            f"steps.{step}.params_from: step '{step}' {where} search 'hpo' (train): its best "
            "params would change what the trials measure; take them in a step that runs after it"
        ) in done.stderr
    # a Pareto front has no one best trial
    ws.gen(
        {
            "ml.yaml": recipe.replace(
                "objective: {score: maximize}",
                "objective: {score: maximize, nested.loss: minimize}",
            ).replace("    sampler: grid\n", "    sampler: grid\n    pruner: none\n")
        }
    )
    done = ws.cli("plan", env=env)
    assert done.returncode == 2
    assert (
        "steps.final.params_from: search 'hpo' has several objectives: its Pareto front holds no "
        "one best trial to take params from"
    ) in done.stderr
