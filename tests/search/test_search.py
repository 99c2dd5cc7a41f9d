"""mlbuild search with real Optuna and real processes: trials as cached, recorded runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import Workspace
from tests.search.world import SPACE, ran, show, toy, trials_by_number

LINE = re.compile(r"^trial (\d+) (ran|cached): (.*) → score (\S+) \((.*), run ([0-9a-f]{8})\)$")


def test_a_search_runs_trials_as_recorded_runs_and_says_which_is_best(
    ws: Workspace, tmp_path: Path
) -> None:
    env = toy(ws, SPACE + "    n_trials: 4\n    seed: 3\n", tmp_path / "markers")
    done = ws.cli("search", "hpo", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.match(
        r"^search hpo: study toy\.hpo\.[0-9a-f]{12} in sqlite:///.*/\.mlbuild/search\.db; 4 trials "
        r"\(tpe sampler, seed 3, median pruner\), 1 worker$",
        lines[0],
    )
    trials = [LINE.match(line) for line in lines[1:5]]
    assert all(trials), lines
    assert [int(m.group(1)) for m in trials if m] == [0, 1, 2, 3]
    assert lines[5].startswith("study toy.hpo.") and lines[5].endswith(": 4 complete")
    assert lines[6] == "best:"
    # prep ran once; every trial ran train once, in a copy: the workspace holds no output
    markers = tmp_path / "markers"
    assert len(ran(markers, "prep")) == 1
    assert len(ran(markers, "train")) == 4
    assert not (ws.root / "metrics.json").exists() and not (ws.root / "data.txt").exists()
    # each trial is a run record of kind `trial`, tagged with its search, study and number
    listed = ws.cli("runs", "list", "--all", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert sorted(r["tags"]["trial"] for r in runs) == ["0", "1", "2", "3"]
    assert {r["kind"] for r in runs} == {"trial"}
    assert {r["tags"]["search"] for r in runs} == {"hpo"}
    report = show(ws, env)
    assert {r["tags"]["study"] for r in runs} == {report["study"]}
    best = report["best"][0]
    assert best["values"][0] == max(t["values"][0] for t in report["top"])
    assert best["run_id"] in {r["id"] for r in runs}
    record = next(r for r in runs if r["id"] == best["run_id"])
    assert record["metrics"]["score"] == best["values"][0]
    assert record["params"]["train"]["lr"] == best["params"]["train.lr"]


def test_the_same_seed_gives_the_same_trials(make_ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sequences = []
    for name in ("a", "b"):
        ws = make_ws(name)
        env = toy(ws, SPACE + "    n_trials: 5\n    seed: 11\n", tmp_path / f"markers-{name}")
        done = ws.cli("search", "hpo", env=env)
        assert done.returncode == 0, done.stderr
        sequences.append([t["params"] for t in trials_by_number(show(ws, env))])
    assert sequences[0] == sequences[1]
    assert len({json.dumps(p, sort_keys=True) for p in sequences[0]}) == 5


def test_a_trial_whose_fingerprint_ran_before_comes_from_the_cache(
    ws: Workspace, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    grid = """\
    space:
      train.lr: [0.01, 0.1]
      train.depth: {type: int, low: 4, high: 5}
    sampler: grid
    seed: 1
"""
    env = toy(ws, grid, markers)
    first = ws.cli("search", "hpo", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(" ran: ") == 4
    assert len(ran(markers, "train")) == 4
    # a new study (another name) over the same grid: every trial is answered from the cache
    ws.gen(
        {"ml.yaml": ws.read("ml.yaml").replace("    seed: 1\n", "    seed: 1\n    study: again\n")}
    )
    again = ws.cli("search", "hpo", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(" cached: ") == 4 and " ran: " not in again.stdout
    assert len(ran(markers, "train")) == 4
    assert len(ran(markers, "prep")) == 1


def test_raising_n_trials_extends_the_study_and_a_finished_one_runs_nothing(
    ws: Workspace, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    env = toy(ws, SPACE + "    n_trials: 3\n    seed: 5\n", markers)
    assert ws.cli("search", "hpo", env=env).returncode == 0
    assert len(ran(markers, "train")) == 3
    again = ws.cli("search", "hpo", env=env)
    assert again.returncode == 0, again.stderr
    assert "trial " not in again.stdout.split("\n", 1)[1].split("study ")[0]
    assert len(ran(markers, "train")) == 3
    ws.gen({"ml.yaml": ws.read("ml.yaml").replace("n_trials: 3", "n_trials: 5")})
    more = ws.cli("search", "hpo", env=env)
    assert more.returncode == 0, more.stderr
    assert [m.group(1) for m in map(LINE.match, more.stdout.splitlines()) if m] == ["3", "4"]
    assert len(ran(markers, "train")) == 5
    report = show(ws, env)
    assert report["counts"] == {"complete": 5}
    # the five trials proposed five different points (a resumed seeded sampler repeats none)
    assert len({json.dumps(t["params"], sort_keys=True) for t in report["top"]}) == 5


def test_editing_an_input_the_search_does_not_vary_starts_a_new_study(
    ws: Workspace, tmp_path: Path
) -> None:
    env = toy(ws, SPACE + "    n_trials: 1\n    seed: 5\n", tmp_path / "markers")
    assert ws.cli("search", "hpo", env=env).returncode == 0
    study = show(ws, env)["study"]
    # a searched value's default is not an input of the study: the same study
    ws.gen({"ml.yaml": ws.read("ml.yaml").replace("lr: 0.1, depth: 3", "lr: 0.2, depth: 4")})
    assert show(ws, env)["study"] == study
    # the code of the target step is: a new study
    ws.gen({"train.py": ws.read("train.py") + "\n# edited\n"})
    done = ws.cli("search", "show", "hpo", "--json", env=env)
    assert done.returncode == 0
    assert json.loads(done.stdout)["study"] == study  # the newest study, said on stderr
    assert "the current inputs of search hpo have no study yet" in done.stderr
    assert ws.cli("search", "hpo", env=env).returncode == 0
    assert show(ws, env)["study"] not in (study,)


def test_a_metric_missing_from_the_metrics_file_fails_the_trial_naming_the_file(
    ws: Workspace, tmp_path: Path
) -> None:
    env = toy(ws, SPACE + "    n_trials: 2\n    seed: 1\n", tmp_path / "markers")
    ws.gen({"ml.yaml": ws.read("ml.yaml").replace("{score: maximize}", "{accuracy: maximize}")})
    done = ws.cli("search", "hpo", env=env)
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("trial ")]
    assert len(failed) == 2
    assert failed[0].endswith(
        ": metric 'accuracy' is not in the metrics of step 'train' (metrics.json), which hold: "
        "nested.loss, score"
    )
    assert "mlbuild: no trial of study toy.hpo." in done.stderr
    assert show(ws, env)["counts"] == {"fail": 2}


def test_a_failing_step_fails_its_trial_and_the_search_goes_on(
    ws: Workspace, tmp_path: Path
) -> None:
    env = toy(ws, SPACE + "    n_trials: 3\n    seed: 2\n", tmp_path / "markers")
    ws.gen(
        {
            "train.py": ws.read("train.py").replace(
                "if os.environ.get",
                "if p['depth'] > 4:\n    raise SystemExit('too deep')\nif os.environ.get",
            )
        }
    )
    done = ws.cli("search", "hpo", env=env)
    report = show(ws, env)
    states = [t["state"] for t in trials_by_number(report)]
    assert len(states) == 3
    fails = [line for line in done.stdout.splitlines() if " failed: " in line]
    assert len(fails) == states.count("fail")
    assert all("step 'train' failed: " in line for line in fails)
    assert done.returncode == (0 if "complete" in states else 1)


def test_a_pruned_trial_stops_at_the_reported_step_and_is_not_cached(
    ws: Workspace, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    search = SPACE + "    n_trials: 12\n    sampler: random\n    seed: 4\n    pruner: median\n"
    env = {**toy(ws, search, markers), "REPORT": "1"}
    done = ws.cli("search", "hpo", env=env)
    assert done.returncode == 0, done.stderr
    pruned = [line for line in done.stdout.splitlines() if " pruned at step " in line]
    assert pruned, done.stdout
    report = show(ws, env)
    assert report["counts"]["pruned"] == len(pruned)
    # the pruned trial's run is recorded as failed, tagged with the step it was stopped at
    runs = json.loads(ws.cli("runs", "list", "--all", "--json", env=env).stdout)
    tagged = [r for r in runs if "pruned" in r["tags"]]
    assert len(tagged) == len(pruned)
    assert {r["status"] for r in tagged} == {"failed"}
    assert {r["tags"]["pruned"] for r in tagged} <= {"0", "1", "2"}
    assert all("score" not in r["metrics"] for r in tagged)


def test_bad_searches_are_refused_before_any_trial_at_their_line(
    ws: Workspace, tmp_path: Path
) -> None:
    env = toy(ws, SPACE + "    n_trials: 2\n", tmp_path / "markers")
    recipe = ws.read("ml.yaml")
    cases = {
        "    step: train\n": (
            "    step: trian\n",
            "ml.yaml:17:11: search.hpo.step: no step named 'trian' (did you mean 'train'?); "
            "steps: prep, train",
        ),
        "      train.depth: {type: int, low: 1, high: 8}\n": (
            "      train.dpeth: {type: int, low: 1, high: 8}\n",
            "ml.yaml:21:7: search.hpo.space.train.dpeth: no parameter 'train.dpeth' (did you "
            "mean 'train.depth'?); a searched key must be a parameter",
        ),
        "      train.lr: {type: float, low: 0.001, high: 1.0, log: true}\n": (
            "      prep.n: [5, 6]\n      train.lr: {type: float, low: 1.0, high: 0.001}\n",
            "ml.yaml:21:17: search.hpo.space.train.lr: `low <= high` must hold, but got low=1.0 "
            "and high=0.001",
        ),
        "    metrics: [metrics.json]\n": (
            "\n",
            "ml.yaml:18:16: search.hpo.objective: step 'train' declares no metrics file, where "
            "the objective score would be read; add it to the step's `metrics`",
        ),
    }
    for old, (new, message) in cases.items():
        ws.gen({"ml.yaml": recipe.replace(old, new)})
        done = ws.cli("search", "hpo", env=env)
        assert done.returncode == 2, (old, done.stdout, done.stderr)
        assert done.stderr.startswith(f"mlbuild: {message}\n"), done.stderr
        assert not (ws.root / ".mlbuild" / "search.db").exists()
    # a key no step of the target's reads
    ws.gen(
        {
            "ml.yaml": recipe.replace("    params: [prep.n]\n", "")
            .replace("prep: {n: 5}", "prep: {n: 5}, unused: {k: 1}")
            .replace("      train.depth:", "      unused.k: [1, 2]\n      train.depth:")
            .replace("n = mlbuild", "n = 5 or mlbuild")
        }
    )
    done = ws.cli("search", "hpo", env=env)
    assert done.returncode == 2
    assert (
        "search.hpo.space.unused.k: no step reads 'unused.k': neither 'train' nor a step it "
        "depends on (prep) lists it in `params`, so every trial would run the same"
    ) in done.stderr
    assert not (ws.root / ".mlbuild" / "search.db").exists()


def test_an_edited_search_is_read_anew_after_its_recipe_was_read_before(
    ws: Workspace, tmp_path: Path
) -> None:
    """load_search reads the recipe through the structure cache (mlbuild.recipe.structure): a
    search's section is structure, so an edit to it is never answered from the entry of before."""
    env = toy(ws, SPACE + "    n_trials: 2\n", tmp_path / "markers")
    recipe = ws.read("ml.yaml")
    before = ws.cli("search", "show", "hpo", env=env)  # writes the valid recipe's entry
    assert before.stderr == "mlbuild: search hpo has no study yet; run `mlbuild search hpo`\n"
    assert list((ws.root / ".mlbuild" / "recipes").glob("*.json"))
    ws.gen({"ml.yaml": recipe.replace("      train.depth:", "      train.dpeth:")})
    done = ws.cli("search", "show", "hpo", env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        "mlbuild: ml.yaml:21:7: search.hpo.space.train.dpeth: no parameter 'train.dpeth' (did "
        "you mean 'train.depth'?); a searched key must be a parameter\n"
    ), done.stderr
    ws.gen({"ml.yaml": recipe})
    again = ws.cli("search", "show", "hpo", env=env)
    assert (again.returncode, again.stderr) == (before.returncode, before.stderr)


def test_the_command_line_is_checked(ws: Workspace, tmp_path: Path) -> None:
    env = toy(ws, SPACE + "    n_trials: 2\n", tmp_path / "markers")
    cases = {
        ("search", "nope"): "mlbuild: no search named 'nope'; searches: hpo\n",
        ("search", "hpo", "train"): "mlbuild: 'train' is not an override (KEY=VALUE, "
        "+KEY=VALUE, ~KEY); mlbuild search takes one search's name, then overrides\n",
        ("search", "show"): "mlbuild: mlbuild search show needs the name of a search of the "
        "recipe\n",
        ("search", "hpo", "--worker", "-j", "2"): "mlbuild: --worker runs one worker; start it "
        "once per worker (or use --jobs N)\n",
        ("search", "show", "hpo"): "mlbuild: search hpo has no study yet; run `mlbuild search "
        "hpo`\n",
    }
    for args, message in cases.items():
        done = ws.cli(*args, env=env)
        assert (done.returncode, done.stderr) == (2, message), args
