"""``mlbuild run`` records every run; ``mlbuild runs …`` lists, shows, compares, tags, fetches
and reproduces them — through the real CLI, on the default SQLite store (and one PostgreSQL run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.exec.test_faults import wait_for

RECIPE = """\
schema_version: 1
name: demo
params: {lr: 0.1, model: tree}
steps:
  train:
    cmd: python train.py
    deps: [train.py]
    params: [lr, model]
    outs: [model.txt, reports/]
    metrics: [metrics.json]
"""

TRAIN = """\
import json, os, mlbuild
p = mlbuild.params()
os.makedirs("reports", exist_ok=True)
open("model.txt", "w").write(f"{p['model']} lr={p['lr']}\\n")
open("reports/summary.txt", "w").write("ok\\n")
json.dump({"accuracy": round(1 - p["lr"], 4)}, open("metrics.json", "w"))
"""


def demo(ws: Workspace) -> Workspace:
    return ws.recipe(RECIPE).gen({"train.py": TRAIN})


def runs(ws: Workspace, *args: str, env: dict[str, str] | None = None) -> Any:
    done = ws.cli("runs", "list", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def show(ws: Workspace, run_id: str) -> Any:
    done = ws.cli("runs", "show", run_id, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_run_is_recorded_with_params_metrics_steps_and_artifacts(ws: Workspace) -> None:
    first = demo(ws).run_json("lr=0.2", "--tag", "team=vision", "--note", "baseline")
    again = ws.run_json("lr=0.2")
    listed = runs(ws, "--all")
    assert [r["id"] for r in listed] == [again["run_id"], first["run_id"]]
    record = show(ws, first["run_id"][:8])
    assert record["status"] == "finished"
    assert record["overrides"] == ["lr=0.2"]
    assert record["params"] == {"lr": 0.2, "model": "tree"}
    assert record["metrics"] == {"accuracy": 0.8}
    assert (record["tags"], record["notes"]) == ({"team": "vision"}, "baseline")
    assert record["data_versions"] == {}
    assert record["git"] is None  # not a git repository
    assert record["recipe_name"] == "demo" and len(record["recipe_hash"]) == 64
    step = record["steps"][0]
    assert (step["name"], step["status"], step["cache_hit"]) == ("train", "ran", False)
    assert step["fingerprint"] == first["steps"][0]["fingerprint"]
    artifacts = {a["path"]: a for a in record["artifacts"]}
    assert set(artifacts) == {"metrics.json", "model.txt", "reports"}
    assert artifacts["model.txt"]["size"] == len("tree lr=0.2\n")
    assert artifacts["reports"]["digest"].endswith(".dir")
    cached = show(ws, again["run_id"])
    assert (cached["steps"][0]["status"], cached["steps"][0]["cache_hit"]) == ("cached", True)
    assert cached["artifacts"] == record["artifacts"]  # a cached step's outputs are recorded too


def test_the_run_line_names_the_recorded_run(ws: Workspace) -> None:
    done = demo(ws).cli("run")
    run_id = runs(ws)[0]["id"]
    assert "1 step: 1 ran in " in done.stdout
    assert f"; recorded as run {run_id[:8]}\n" in done.stdout


def test_a_failed_run_is_recorded_as_failed(ws: Workspace) -> None:
    demo(ws).gen({"train.py": "raise SystemExit(3)\n"})
    assert ws.cli("run").returncode == 1
    record = show(ws, runs(ws)[0]["id"])
    assert record["status"] == "failed"
    assert [(s["name"], s["status"]) for s in record["steps"]] == [("train", "failed")]


def test_secrets_are_never_written_to_the_store(ws: Workspace) -> None:
    secret = "s3cr3t-token-8472"
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          leak:
            cmd: python leak.py
            metrics: [m.json]
            secrets: [API_TOKEN]
        """
    ).gen(
        {
            "leak.py": """\
                import json, os
                json.dump({"token": os.environ["API_TOKEN"]}, open("m.json", "w"))
                """
        }
    )
    done = ws.cli("run", "--note", f"ran with {secret}", env={"API_TOKEN": secret})
    assert done.returncode == 0, done.stderr
    record = show(ws, runs(ws)[0]["id"])
    assert (record["metrics"], record["notes"]) == ({"token": "***"}, "ran with ***")
    stored = b"".join(p.read_bytes() for p in (ws.root / ".mlbuild").glob("runs.db*"))
    assert secret.encode() not in stored


KILLABLE = """\
schema_version: 1
name: demo
steps:
  slow:
    cmd: echo $$ > pid.txt; sleep 60; echo done > out.txt
    outs: [out.txt]
"""


def test_a_killed_run_is_recorded_as_interrupted_not_running_forever(ws: Workspace) -> None:
    ws.recipe(KILLABLE)
    proc = ws.start("run")
    wait_for(ws.root / "pid.txt")
    assert runs(ws)[0]["status"] == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    os.killpg(int(ws.read("pid.txt")), signal.SIGKILL)
    record = runs(ws)[0]
    assert record["status"] == "interrupted"
    assert record["ended"] is not None


def test_a_cancelled_run_is_recorded_as_interrupted(ws: Workspace) -> None:
    ws.recipe(KILLABLE)
    proc = ws.start("run")
    wait_for(ws.root / "pid.txt")
    time.sleep(0.5)  # let the executor register the step it started
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert runs(ws)[0]["status"] == "interrupted"


def test_runs_list_filters_sorts_and_prints_a_table_or_csv(ws: Workspace) -> None:
    demo(ws)
    ids = {lr: ws.run_json(f"lr={lr}")["run_id"] for lr in (0.3, 0.1, 0.2)}
    best = runs(ws, "--sort", "accuracy")
    assert [r["id"] for r in best] == [ids[0.1], ids[0.2], ids[0.3]]
    assert [r["id"] for r in runs(ws, "--metric", "accuracy>=0.8")] == [ids[0.2], ids[0.1]]
    assert [r["id"] for r in runs(ws, "--param", "lr=0.3")] == [ids[0.3]]
    table = ws.cli("runs", "list", "--sort", "accuracy:asc", "-n", "2").stdout.splitlines()
    assert table[0].split() == [
        "RUN", "STARTED", "STATUS", "COMMIT", "TOOK", "OVERRIDES", "accuracy", "TAGS"
    ]  # fmt: skip
    assert [line.split()[0] for line in table[1:]] == [ids[0.3][:8], ids[0.2][:8]]
    assert table[1].split()[-2:] == ["lr=0.3", "0.7"]
    csv = ws.cli("runs", "list", "--csv").stdout.splitlines()
    assert csv[0] == (
        "id,kind,status,started,duration,recipe,git_commit,git_branch,git_dirty,user,host,"
        "overrides,param.lr,param.model,metric.accuracy"
    )
    assert csv[1].startswith(f"{ids[0.2]},run,finished,")
    assert csv[1].endswith(",lr=0.2,0.2,tree,0.8")


def test_runs_list_rejects_a_malformed_filter(ws: Workspace) -> None:
    demo(ws)
    done = ws.cli("runs", "list", "--metric", "accuracy")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: --metric 'accuracy': expected KEY OP VALUE with OP one of <= >= != = < > "
        "(for example --metric accuracy>=0.9)\n"
    )


def test_an_unknown_run_is_a_usage_error_with_a_suggestion(ws: Workspace) -> None:
    run_id = demo(ws).run_json()["run_id"]
    wrong = run_id[:7] + ("0" if run_id[7] != "0" else "1")
    done = ws.cli("runs", "show", wrong)
    assert done.returncode == 2
    assert done.stderr == (
        f"mlbuild: no run '{wrong}' in the run store sqlite:///{ws.root}/.mlbuild/runs.db; "
        f"did you mean '{run_id[:8]}'? (`mlbuild runs list` shows the recent runs)\n"
    )


def test_runs_show_prints_the_record_for_people(ws: Workspace) -> None:
    run_id = demo(ws).run_json("lr=0.2")["run_id"]
    out = ws.cli("runs", "show", run_id[:8]).stdout
    assert out.startswith(f"run {run_id} (finished)\n")
    assert "  overrides  lr=0.2\n" in out
    assert "params:\n  lr     0.2\n  model  tree\n" in out
    assert "metrics:\n  accuracy  0.8\n" in out
    assert "data versions:\n  none\n" in out
    assert "  PATH          STEP   SIZE  DIGEST\n  metrics.json  train  17 B  " in out


HOSTILE_METRICS = """\
import json
json.dump({"acc\\u001b[2J": 0.5, "fake\\nrow": 1, "note": "ok\\u001b]0;owned\\u0007"},
          open("metrics.json", "w"))
open("model.txt", "w").write("m")
"""


def test_metric_names_and_values_a_step_writes_cannot_drive_the_terminal(ws: Workspace) -> None:
    # a metrics file is the step's output, not ours: an escape sequence in a name or value must
    # not clear the screen or retitle the terminal, nor a newline forge a row of the table
    ws.recipe(RECIPE.replace(", reports/", "")).gen({"train.py": HOSTILE_METRICS})
    run = ws.cli("run")
    assert run.returncode == 0, run.stderr
    run_id = ws.run_json()["run_id"]
    for out in (
        run.stdout,
        ws.cli("runs", "show", run_id[:8]).stdout,
        ws.cli("runs", "list").stdout,
        ws.cli("runs", "compare", run_id[:8], run_id[:8]).stdout,
    ):
        assert "\x1b" not in out and "\x07" not in out, out
        assert "fake\nrow" not in out
    shown = ws.cli("runs", "show", run_id[:8]).stdout
    assert "  acc\\x1b[2J  0.5\n" in shown
    assert "  fake\\nrow   1\n" in shown
    assert "ok\\x1b]0;owned\\x07" in shown


def test_runs_compare_puts_runs_side_by_side_and_marks_differences(ws: Workspace) -> None:
    demo(ws)
    a = ws.run_json("lr=0.1")["run_id"]
    b = ws.run_json("lr=0.2")["run_id"]
    lines = ws.cli("runs", "compare", a[:8], b[:8], "--diff").stdout.splitlines()
    assert lines[0].split() == [a[:8], b[:8]]
    rows = {" ".join(line.split()[1:3]): line.split() for line in lines[1:-1]}
    assert rows["param lr"] == ["*", "param", "lr", "0.1", "0.2"]
    assert rows["metric accuracy"] == ["*", "metric", "accuracy", "0.9", "0.8"]
    assert "param model" not in rows  # the same in both: left out with --diff
    assert lines[-1] == f"{len(rows)} differences (marked *)"
    compared = json.loads(ws.cli("runs", "compare", a, b, "--json").stdout)
    model = next(r for r in compared["rows"] if r["key"] == "model")
    assert model == {
        "section": "param",
        "key": "model",
        "differs": False,
        "values": ["tree", "tree"],
    }


def test_runs_tag_adds_changes_and_removes_tags_and_sets_the_note(ws: Workspace) -> None:
    run_id = demo(ws).run_json("--tag", "stage=dev", "--tag", "old=1")["run_id"]
    done = ws.cli("runs", "tag", run_id[:8], "stage=prod", "owner=ana", "--remove", "old")
    assert done.stdout == f"run {run_id[:8]}: tags owner=ana, stage=prod\n"
    ws.cli("runs", "tag", run_id[:8], "--note", "ship it")
    record = show(ws, run_id)
    assert (record["tags"], record["notes"]) == ({"owner": "ana", "stage": "prod"}, "ship it")
    assert [r["id"] for r in runs(ws, "--tag", "stage=prod")] == [run_id]


def test_runs_get_restores_an_artifact_or_a_file_inside_one(ws: Workspace) -> None:
    run_id = demo(ws).run_json("lr=0.2")["run_id"]
    ws.run_json("lr=0.3")  # the workspace now holds another model
    done = ws.cli("runs", "get", run_id[:8], "model.txt", "-o", "old-model.txt")
    assert done.stdout == f"restored model.txt of run {run_id[:8]} to old-model.txt\n"
    assert ws.read("old-model.txt") == "tree lr=0.2\n"
    ws.cli("runs", "get", run_id[:8], "reports/summary.txt", "-o", "summary.txt")
    assert ws.read("summary.txt") == "ok\n"
    (ws.root / "out").mkdir()
    ws.cli("runs", "get", run_id[:8], "reports", "-o", "out/reports")
    assert (ws.root / "out/reports/summary.txt").read_text() == "ok\n"
    missing = ws.cli("runs", "get", run_id[:8], "model.tx", "-o", "x")
    assert missing.returncode == 2
    assert missing.stderr == (
        f"mlbuild: run {run_id[:8]} has no artifact model.tx (did you mean model.txt?); "
        "its artifacts: metrics.json, model.txt, reports\n"
    )


def test_runs_reproduce_re_runs_and_reports_a_match(ws: Workspace) -> None:
    run_id = demo(ws).run_json("lr=0.2")["run_id"]
    ws.run_json("lr=0.3")
    done = ws.cli("runs", "reproduce", run_id[:8])
    assert done.returncode == 0, done.stderr
    assert "train: running (--force)" in done.stdout
    lines = done.stdout.splitlines()
    assert lines[-1].startswith(f"run {run_id[:8]} reproduced: 3 artifacts and 1 metric match")
    assert ws.read("model.txt") == "tree lr=0.2\n"
    rerun = runs(ws)[0]
    assert (rerun["kind"], rerun["tags"]) == ("reproduce", {"reproduces": run_id})


def test_runs_reproduce_fails_when_outputs_differ(ws: Workspace) -> None:
    demo(ws).gen({"train.py": TRAIN.replace('\\n")', '\\n" + str(os.urandom(4)))', 1)})
    run_id = ws.run_json()["run_id"]
    done = ws.cli("runs", "reproduce", run_id[:8])
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"mlbuild: run {run_id[:8]} did not reproduce: artifact model.txt differ (new run "
    )


def test_runs_reproduce_refuses_a_changed_workspace_unless_anyway(ws: Workspace) -> None:
    run_id = demo(ws).run_json()["run_id"]
    ws.recipe(RECIPE.replace("lr: 0.1", "lr: 0.5"))
    done = ws.cli("runs", "reproduce", run_id[:8])
    assert done.returncode == 1
    assert f"mlbuild: the workspace is not in the state run {run_id[:8]} recorded: recipe was " in (
        done.stderr
    )
    assert "; params was " in done.stderr
    assert done.stderr.endswith("restore that state, or pass --anyway to re-run regardless\n")
    anyway = ws.cli("runs", "reproduce", run_id[:8], "--anyway")
    assert anyway.returncode == 1
    assert (
        "did not reproduce: artifacts metrics.json, model.txt and metric accuracy differ"
        in anyway.stderr
    )


def git(ws: Workspace, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=ws.root,
        check=True,
        capture_output=True,
    )


def test_a_run_records_the_git_commit_branch_and_dirty_state(ws: Workspace) -> None:
    demo(ws).gen({".gitignore": "model.txt\nreports/\nmetrics.json\n"})
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", ".")
    git(ws, "commit", "-q", "-m", "first")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ws.root, capture_output=True, text=True, check=True
    ).stdout.strip()
    clean = show(ws, ws.run_json()["run_id"])["git"]
    assert clean == {"commit": head, "branch": "main", "dirty": False, "diff_hash": None}
    (ws.root / "train.py").write_text(TRAIN + "# tuned\n")
    dirty = show(ws, ws.run_json()["run_id"])["git"]
    assert (dirty["commit"], dirty["dirty"], len(dirty["diff_hash"])) == (head, True, 64)
    assert [r["git"]["commit"] for r in runs(ws, "--commit", head[:7])] == [head, head]


def test_models_get_versions_and_aliases_roll_back(ws: Workspace) -> None:
    demo(ws)
    first = ws.run_json("lr=0.1")["run_id"]
    second = ws.run_json("lr=0.2")["run_id"]
    done = ws.cli("model", "register", first[:8], "--name", "iris", "--artifact", "model.txt")
    assert done.stdout == f"registered model 'iris' version 1 from run {first[:8]} (1 artifact)\n"
    done = ws.cli("model", "register", second[:8], "--name", "iris")
    assert done.stdout == f"registered model 'iris' version 2 from run {second[:8]} (3 artifacts)\n"
    assert ws.cli("model", "alias", "iris", "production", "1").stdout == (
        "model 'iris' alias 'production' → version 1\n"
    )
    ws.cli("model", "alias", "iris", "production", "2")
    assert ws.cli("model", "rollback", "iris", "production").stdout == (
        "model 'iris' alias 'production' rolled back: version 2 → version 1\n"
    )
    versions = json.loads(ws.cli("model", "list", "iris", "--json").stdout)
    assert [(v["version"], v["aliases"]) for v in versions] == [(1, ["production"]), (2, [])]
    assert versions[0]["provenance"]["params"] == {"lr": 0.1, "model": "tree"}
    history = json.loads(ws.cli("model", "history", "iris", "--json").stdout)
    assert [(c["alias"], c["version"]) for c in history] == [
        ("production", 1),
        ("production", 2),
        ("production", 1),
    ]
    unknown = ws.cli("model", "alias", "iris", "production", "7")
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "mlbuild: model 'iris' has no version 7; it has versions 1, 2\n",
    )


def test_gc_keeps_the_artifacts_of_registered_model_versions(ws: Workspace) -> None:
    demo(ws)
    registered = ws.run_json("lr=0.2")["run_id"]
    dropped = ws.run_json("lr=0.3")["run_id"]
    ws.run_json("lr=0.4")
    ws.cli("model", "register", registered[:8], "--name", "iris")
    assert ws.cli("gc").returncode == 0
    assert (
        ws.cli("runs", "get", registered[:8], "reports/summary.txt", "-o", "s.txt").returncode == 0
    )
    assert ws.cli("runs", "get", registered[:8], "model.txt", "-o", "m.txt").returncode == 0
    assert ws.read("m.txt") == "tree lr=0.2\n"
    gone = ws.cli("runs", "get", dropped[:8], "model.txt", "-o", "x.txt")
    assert gone.returncode == 2
    assert "is no longer in the cache at" in gone.stderr
    assert f"make it again with `mlbuild runs reproduce {dropped[:8]}`" in gone.stderr


def test_a_team_store_on_postgresql_records_runs_from_the_cli(ws: Workspace, postgres: Any) -> None:
    env = {"MLBUILD_STORE": postgres.database()}
    run_id = demo(ws).run_json(env=env)["run_id"]
    assert [r["id"] for r in runs(ws, env=env)] == [run_id]
    assert not (ws.root / ".mlbuild" / "runs.db").exists()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ana:hunter2@127.0.0.1:1/runs", "ana:***@127.0.0.1:1/runs"),
        ("postgresql://ana@127.0.0.1:1/runs?password=hunter2", "ana@127.0.0.1:1/runs?password=***"),
    ],
)
def test_the_store_url_never_shows_a_password(ws: Workspace, url: str, shown: str) -> None:
    demo(ws)
    done = ws.cli("runs", "list", env={"MLBUILD_STORE": url})
    assert done.returncode == 1
    assert "hunter2" not in done.stderr
    assert done.stderr.startswith(f"mlbuild: run store postgresql+psycopg2://{shown} is unusable: ")


@pytest.mark.parametrize("argv", [["runs", "--help"], ["model", "--help"]])
def test_store_commands_help_loads_no_heavy_library(ws: Workspace, argv: list[str]) -> None:
    from tests.cli.test_commands import HEAVY, loaded_modules

    assert loaded_modules(ws, *argv) & set(HEAVY) == set()


def test_the_recipe_can_name_the_store(ws: Workspace, tmp_path: Path) -> None:
    shared = tmp_path / "team" / "runs.db"
    ws.recipe(RECIPE + f"store: {{url: 'sqlite:///{shared}'}}\n").gen({"train.py": TRAIN})
    run_id = ws.run_json()["run_id"]
    assert [r["id"] for r in runs(ws)] == [run_id]
    assert shared.exists() and not (ws.root / ".mlbuild" / "runs.db").exists()


def test_a_password_in_the_recipes_store_url_is_refused(ws: Workspace) -> None:
    ws.recipe(RECIPE + "store:\n  url: postgresql://ana:hunter2@db.example.com/runs\n")
    done = ws.gen({"train.py": TRAIN}).cli("run")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "mlbuild: ml.yaml:12:8: store.url: must not hold a password (ml.yaml is committed); put "
        "it in PGPASSWORD or ~/.pgpass\n"
    )


def test_store_path_can_be_a_plain_file_path(ws: Workspace, tmp_path: Path) -> None:
    env = {"MLBUILD_STORE": str(tmp_path / "shared" / "runs.db")}
    run_id = demo(ws).run_json(env=env)["run_id"]
    assert [r["id"] for r in runs(ws, env=env)] == [run_id]
    assert (tmp_path / "shared" / "runs.db").exists()


def test_recording_a_no_op_run_loads_no_database_library(ws: Workspace) -> None:
    """The default store is written through a journal (stdlib JSON files) that the next `runs`
    or `model` command moves into SQLite; SQLAlchemy stays off a no-op run's path."""
    demo(ws).run_json()
    probe = (
        "import sys\n"
        "from mlbuild.cli.main import main\n"
        "code = main(['run', '-q'])\n"
        "print(code, sorted({'sqlalchemy', 'pydantic', 'hydra'} & set(sys.modules)))\n"
    )
    assert ws.cli_python(probe).stdout.strip().splitlines()[-1] == "0 []"
    assert len(list((ws.root / ".mlbuild/runs/journal").glob("*.json"))) == 2
    listed = runs(ws, "--all")
    assert [r["status"] for r in listed] == ["finished", "finished"]
    assert not list((ws.root / ".mlbuild/runs/journal").glob("*.json")), "moved into the store"


def test_a_run_records_the_versions_of_the_datasets_it_read(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        data:
          rows: {path: rows.csv}
        steps:
          count: {cmd: wc -l < rows.csv > n.txt, deps: [data:rows], outs: [n.txt]}
        """
    ).gen({"rows.csv": "a\nb\n"})
    run_id = ws.run_json()["run_id"]
    versions = show(ws, run_id)["data_versions"]
    assert list(versions) == ["rows"]
    assert versions["rows"].startswith("file ")
    assert versions["rows"].endswith(" path=rows.csv")


def test_a_run_that_executed_nothing_is_recorded_but_listed_only_with_all(ws: Workspace) -> None:
    made = demo(ws).run_json("lr=0.2")["run_id"]
    noop = ws.cli("run", "lr=0.2")
    assert noop.returncode == 0, noop.stderr
    assert " (it executed nothing: `runs list --all` shows it)\nmetrics: " in noop.stdout
    restored = ws.run_json("lr=0.3")["run_id"]
    ws.run_json("lr=0.2")  # restores lr=0.2's outputs from the cache: executes nothing either
    assert [r["id"] for r in runs(ws)] == [restored, made]
    assert len(runs(ws, "--all")) == 4
    table = ws.cli("runs", "list").stdout.splitlines()
    assert [line.split()[0] for line in table[1:-1]] == [restored[:8], made[:8]]
    assert table[-1] == (
        "(2 runs that executed nothing, every step cached, not shown; `--all` lists them)"
    )
    assert "not shown" not in ws.cli("runs", "list", "--all").stdout
    # a failed run executed something, even when its steps were cache hits before it failed
    ws.gen({"train.py": "raise SystemExit(3)\n"})
    assert ws.cli("run", "lr=0.4").returncode == 1
    assert runs(ws)[0]["status"] == "failed"


def test_metrics_two_steps_report_under_one_key_are_kept_for_each_step(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        params: {seed: 1}
        steps:
          train:
            cmd: 'echo "{\\"accuracy\\": 0.9, \\"loss\\": 0.1}" > train.json'
            params: [seed]
            metrics: [train.json]
          evaluate:
            cmd: 'echo "{\\"accuracy\\": 0.8, \\"f1\\": 0.7}" > eval.json'
            needs: [train]
            metrics: [eval.json]
        """
    )
    first = ws.run_json()
    assert first["metrics"] == {
        "train/accuracy": 0.9,
        "loss": 0.1,
        "evaluate/accuracy": 0.8,
        "f1": 0.7,
    }
    assert [s["metrics"] for s in first["steps"]] == [
        {"accuracy": 0.9, "loss": 0.1},
        {"accuracy": 0.8, "f1": 0.7},
    ]
    assert show(ws, first["run_id"])["metrics"] == first["metrics"]
    second = ws.run_json("seed=2")["run_id"]
    found = runs(ws, "--metric", "evaluate/accuracy>=0.8", "--sort", "train/accuracy")
    assert [r["id"] for r in found] == [second, first["run_id"]]
    lines = ws.cli("runs", "compare", first["run_id"][:8], second[:8]).stdout.splitlines()
    rows = [line.split()[:3] for line in lines if " metric " in f" {line} "]
    assert rows == [
        ["metric", "evaluate/accuracy", "0.8"],
        ["metric", "f1", "0.7"],
        ["metric", "loss", "0.1"],
        ["metric", "train/accuracy", "0.9"],
    ]


def test_runs_reproduce_compares_only_cached_outputs_and_names_the_others(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          train:
            cmd: python train.py
            deps: [train.py]
            outs:
              - model.txt
              - {path: train.log, cache: false}
              - {path: checkpoints, persist: true}
        """
    ).gen(
        {
            "train.py": """\
                import os, time
                open("model.txt", "w").write("weights\\n")
                open("train.log", "w").write(f"started {time.time_ns()}\\n")
                os.makedirs("checkpoints", exist_ok=True)
                open(f"checkpoints/{time.time_ns()}.ckpt", "w").write("x")
                """
        }
    )
    run_id = ws.run_json()["run_id"]
    done = ws.cli("runs", "reproduce", run_id[:8])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "not compared (cache: false)" in next(x for x in lines if " train.log " in x)
    assert "not compared (persist: true)" in next(x for x in lines if " checkpoints " in x)
    assert lines[-1].startswith(f"run {run_id[:8]} reproduced: 1 artifact and 0 metrics match ")
    assert lines[-1].endswith(
        "; not compared, as declared: checkpoints (persist: true), train.log (cache: false)"
    )
    as_json = json.loads(ws.cli("runs", "reproduce", run_id[:8], "--json").stdout)
    assert as_json["skipped"] == [
        {"path": "checkpoints", "reason": "persist: true"},
        {"path": "train.log", "reason": "cache: false"},
    ]
    assert [o["name"] for o in as_json["outputs"]] == ["model.txt"]
