"""Graph problems are recipe problems: located in ml.yaml, all reported, exit code 2."""

from __future__ import annotations

from tests.conftest import Workspace


def errors(ws: Workspace, recipe: str) -> list[str]:
    ws.recipe(recipe)
    done = ws.cli("validate")
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    return [
        line
        for line in done.stderr.splitlines()
        if line.startswith(("mlbuild: ml.yaml", "ml.yaml"))
    ]


def test_a_cycle_is_printed_as_a_loop(ws: Workspace) -> None:
    assert errors(
        ws,
        """\
schema_version: 1
name: demo
steps:
  a: {cmd: x, deps: [c.txt], outs: [a.txt]}
  b: {cmd: x, deps: [a.txt], outs: [b.txt]}
  c: {cmd: x, deps: [b.txt], outs: [c.txt]}
""",
    ) == [
        "mlbuild: ml.yaml:4:3: steps.a: steps form a cycle: a → b → c → a; a step cannot depend "
        "on its own outputs, directly or through other steps"
    ]


def test_two_steps_writing_one_path_and_nested_outputs_are_clashes(ws: Workspace) -> None:
    assert errors(
        ws,
        """\
schema_version: 1
name: demo
steps:
  a: {cmd: x, outs: [model.pkl, data/]}
  b: {cmd: x, outs: [model.pkl]}
  c: {cmd: x, outs: [data/raw.csv]}
  d: {cmd: x, outs: [logs/run.txt]}
  e: {cmd: x, outs: [logs]}
""",
    ) == [
        "mlbuild: ml.yaml:5:22: steps.b.outs[0]: 'model.pkl' is also written by step 'a' "
        "(steps.a.outs[0] at line 4); each path must have one producer",
        "ml.yaml:6:22: steps.c.outs[0]: 'data/raw.csv' is inside 'data', written by step 'a' "
        "(steps.a.outs[1] at line 4); each path must have one producer",
        "ml.yaml:8:22: steps.e.outs[0]: 'logs' holds 'logs/run.txt', written by step 'd' "
        "(steps.d.outs[0] at line 7); each path must have one producer",
    ]


def test_a_metrics_file_written_twice_is_reported_at_the_second_metrics_entry(
    ws: Workspace,
) -> None:
    assert errors(
        ws,
        """\
schema_version: 1
name: demo
steps:
  train:
    cmd: x
    outs: [model.pkl]
    metrics: [metrics.json]
  evaluate:
    cmd: x
    deps: [model.pkl]
    outs: [report.html]
    metrics: [scores.json, metrics.json]
""",
    ) == [
        "mlbuild: ml.yaml:12:28: steps.evaluate.metrics[1]: 'metrics.json' is also written by "
        "step 'train' (steps.train.metrics[0] at line 7); each path must have one producer",
    ]


def test_paths_outside_the_repository_are_rejected(ws: Workspace) -> None:
    lines = errors(
        ws,
        """\
schema_version: 1
name: demo
steps:
  a: {cmd: x, outs: [../escape.txt], deps: [/etc/passwd]}
""",
    )
    assert len(lines) == 2
    assert lines[0].startswith(
        "mlbuild: ml.yaml:4:22: steps.a.outs[0]: '../escape.txt' is outside the repository"
    )
    assert lines[1].startswith("ml.yaml:4:45: steps.a.deps[0]: '/etc/passwd' is outside")


def test_needs_must_name_a_step(ws: Workspace) -> None:
    assert errors(
        ws,
        """\
schema_version: 1
name: demo
steps:
  prepare: {cmd: x}
  train: {cmd: x, needs: [prepar]}
""",
    ) == [
        "mlbuild: ml.yaml:5:27: steps.train.needs[0]: no step named 'prepar' "
        "(did you mean 'prepare'?)"
    ]


def test_params_and_interpolations_must_exist(ws: Workspace) -> None:
    assert errors(
        ws,
        """\
schema_version: 1
name: demo
params: {train: {lr: 0.1}}
steps:
  train:
    cmd: python t.py --lr ${params.train.lrr}
    params: [trian.lr]
""",
    ) == [
        "mlbuild: ml.yaml:6:10: steps.train.cmd: no parameter 'train.lrr' for "
        "${params.train.lrr} (did you mean 'train.lr'?)",
        "ml.yaml:7:14: steps.train.params[0]: no parameter matches 'trian.lr' "
        "(did you mean 'train.lr'?)",
    ]


def test_a_dep_that_no_step_makes_and_no_file_provides(ws: Workspace) -> None:
    ws.recipe(
        """\
schema_version: 1
name: demo
steps:
  train: {cmd: x, deps: [train.py, data.csv]}
"""
    ).gen({"train.py": ""})
    done = ws.cli("run")
    assert done.returncode == 2
    assert done.stderr.splitlines()[:3] == [
        "mlbuild: ml.yaml:4:36: steps.train.deps[1]: 'data.csv' does not exist and no step "
        "makes it; create the file or add a step that lists it in outs",
        "    4 |   train: {cmd: x, deps: [train.py, data.csv]}",
        "      |                                    ^",
    ]


def test_a_missing_lock_file_is_named(ws: Workspace) -> None:
    ws.recipe(
        """\
schema_version: 1
name: demo
environment: {requirements: requirements.lock}
steps:
  train: {cmd: "true"}
"""
    )
    done = ws.cli("run")
    assert done.returncode == 2
    assert "lock file requirements.lock does not exist" in done.stderr


def test_the_environment_lock_enters_every_fingerprint(ws: Workspace) -> None:
    ws.recipe(
        """\
schema_version: 1
name: demo
environment: {requirements: requirements.lock}
steps:
  train: {cmd: "true"}
"""
    ).gen({"requirements.lock": "numpy==2.0.0\n"})
    ws.run_json()
    ws.gen({"requirements.lock": "numpy==2.1.0\n"})
    result = ws.run_json()
    assert result["steps"][0]["status"] == "ran"
    assert result["steps"][0]["reasons"] == ["environment lock requirements.lock changed"]
