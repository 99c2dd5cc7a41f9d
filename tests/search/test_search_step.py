"""A search is a step of the graph (``search:NAME``, kind ``search``): ``run``, ``plan``, the
run record and ``--keep-going`` treat it as any step, and a step taking its best params
(``params_from``) runs after it, again only when those params change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Workspace
from tests.search.world import RECIPE, toy

SEARCH = """\
    n_trials: 3
    sampler: random
    seed: 3
    pruner: none
    space:
      train.lr: {type: float, low: 0.001, high: 1.0, log: true}
      train.depth: {type: int, low: 1, high: 8}
"""

FINAL = """\
  final:
    cmd: python final.py
    deps: [final.py, data.txt]
    params: ["train.*"]
    params_from: search.hpo
    outs: [final.json]
search:
"""


def _with_final(ws: Workspace, markers: Path, search: str = SEARCH) -> dict[str, str]:
    env = toy(ws, search, markers)
    ws.recipe(RECIPE.format(search=search.rstrip("\n")).replace("search:\n", FINAL, 1))
    ws.gen(
        {"final.py": "import json, mlbuild\njson.dump(mlbuild.params(), open('final.json', 'w'))\n"}
    )
    return env


def _run(ws: Workspace, env: dict[str, str], *args: str) -> dict[str, Any]:
    done = ws.cli("run", "--json", *args, env=env, timeout=600)
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    result["exit"] = done.returncode
    return result


def _steps(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in result["steps"]}


def test_a_step_taking_best_params_runs_after_the_search_and_again_only_when_they_change(
    ws: Workspace, tmp_path: Path
) -> None:
    env = _with_final(ws, tmp_path / "markers")
    plan = ws.cli("plan", "final", env=env)
    assert "search:hpo  run      never run in this workspace" in plan.stdout
    first = _steps(_run(ws, env, "final"))
    assert [first[n]["status"] for n in ("prep", "search:hpo", "final")] == ["ran"] * 3
    best = first["search:hpo"]["data"]["best"]
    assert best["params"] == {"train.lr": 0.04491523825137997, "train.depth": 6}
    assert best["trial"] == 0 and len(best["run_id"]) == 32
    taken = json.loads((ws.root / "final.json").read_text())["train"]
    assert taken == {"lr": 0.04491523825137997, "depth": 6}
    assert first["final"]["reasons"] == ["never run in this workspace"]

    again = _steps(_run(ws, env, "final"))
    assert {n: s["status"] for n, s in again.items()} == {
        "prep": "cached",
        "search:hpo": "cached",
        "final": "cached",
    }

    # more trials: the search runs again; its best is the same, so `final` stays cached
    ws.recipe((ws.root / "ml.yaml").read_text().replace("n_trials: 3", "n_trials: 5"))
    extended = _steps(_run(ws, env, "final"))
    assert extended["search:hpo"]["status"] == "ran"
    assert extended["search:hpo"]["reasons"] == ["config.declared.n_trials changed: 3 → 5"]
    assert extended["final"]["status"] == "cached"

    # the objective's code changed: a new study, another best, and `final` says why it re-runs
    train = (ws.root / "train.py").read_text()
    ws.gen({"train.py": train.replace('(p["depth"] - 5) ** 2', '(p["depth"] - 2) ** 2')})
    changed = _steps(_run(ws, env, "final"))
    assert changed["search:hpo"]["status"] == "ran"
    [reason] = changed["search:hpo"]["reasons"]
    assert reason.startswith("dep train.py changed (")
    from mlbuild.params import render

    new = changed["search:hpo"]["data"]["best"]["params"]
    assert new != best["params"]
    moved = [k for k in ("train.lr", "train.depth") if new[k] != best["params"][k]]
    shown = ", ".join(f"{k} {render(best['params'][k])} → {render(new[k])}" for k in moved)
    assert changed["final"]["status"] == "ran"
    assert changed["final"]["reasons"] == [f"best params of search `hpo` changed: {shown}"]
    assert json.loads((ws.root / "final.json").read_text())["train"] == {
        "lr": new["train.lr"],
        "depth": new["train.depth"],
    }


def test_run_leaves_a_search_alone_unless_it_is_named_or_a_selected_step_needs_it(
    ws: Workspace, tmp_path: Path
) -> None:
    env = toy(ws, SEARCH, tmp_path / "markers")
    everything = ws.cli("plan", env=env)
    assert "search:hpo" not in everything.stdout, everything.stdout
    result = _run(ws, env)
    assert [s["name"] for s in result["steps"]] == ["prep", "train"]
    named = _run(ws, env, "search:hpo")
    assert _steps(named)["search:hpo"]["status"] == "ran"
    record = ws.cli("runs", "show", named["run_id"], "--json", env=env)
    assert record.returncode == 0, record.stderr
    steps = json.loads(record.stdout)["steps"]
    assert "search:hpo" in json.dumps(steps)


def test_a_search_whose_trials_all_fail_fails_its_step_and_keep_going_runs_the_rest(
    ws: Workspace, tmp_path: Path
) -> None:
    env = _with_final(ws, tmp_path / "markers", SEARCH.replace("n_trials: 3", "n_trials: 2"))
    ws.recipe((ws.root / "ml.yaml").read_text().replace("{score: maximize}", "{nope: maximize}"))
    result = _run(ws, env, "--keep-going", "final", "train")
    steps = _steps(result)
    assert result["exit"] == 1
    assert steps["search:hpo"]["status"] == "failed"
    assert steps["search:hpo"]["message"] == "search hpo exited with code 1"
    assert steps["train"]["status"] == "ran"
    assert steps["final"]["status"] == "skipped"
    assert steps["final"]["message"] == "not run: 'search:hpo' failed"


def test_a_search_of_a_step_that_does_not_exist_refuses_the_recipe_before_any_step_runs(
    ws: Workspace, tmp_path: Path
) -> None:
    env = toy(ws, SEARCH, tmp_path / "markers")
    ws.recipe((ws.root / "ml.yaml").read_text().replace("step: train", "step: trian"))
    for args in (["run", "search:hpo"], ["run", "prep"], ["plan"]):
        done = ws.cli(*args, env=env)
        assert done.returncode == 2, (args, done.stdout)
        assert done.stderr.startswith(
            "mlbuild: ml.yaml:17:11: search.hpo.step: no step named 'trian' (did you mean "
            "'train'?); steps: prep, train\n"
        ), (args, done.stderr)
    assert not list((tmp_path / "markers").iterdir())


def test_a_search_answered_from_the_cache_leaves_its_own_best_params_not_another_studys(
    ws: Workspace, tmp_path: Path
) -> None:
    # space A, then B (another study, another best.json), then A again: the search step is
    # answered from the cache, and the step after it must take A's best, not B's
    env = _with_final(ws, tmp_path / "markers")
    first = _steps(_run(ws, env, "final"))["search:hpo"]["data"]["best"]
    other = SEARCH.replace("high: 8", "high: 3")
    _with_final(ws, tmp_path / "markers2", other)
    second = _steps(_run(ws, env, "final"))["search:hpo"]["data"]["best"]
    assert second["study"] != first["study"]
    _with_final(ws, tmp_path / "markers3")
    third = _steps(_run(ws, env, "final"))
    assert third["search:hpo"]["status"] == "cached"
    assert third["search:hpo"]["data"]["best"] == first
    taken = json.loads((ws.root / "final.json").read_text())["train"]
    assert taken == {"lr": first["params"]["train.lr"], "depth": first["params"]["train.depth"]}
