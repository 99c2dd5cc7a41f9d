"""Params files (DVC's ``params.yaml``): a step that reads the file itself sees exactly the values
its fingerprint holds, because overrides are written into the file before the steps run."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import Workspace, statuses

TRAIN = """\
import json, sys, yaml
params = yaml.safe_load(open("params.yaml"))
json.dump({"n_est": params["train"]["n_est"], "flag": params["train"]["flag"]},
          open("model.json", "w"))
"""

DVC_REPO = {
    "ml.yaml": """\
        schema_version: 1
        name: dvc-style
        params: params.yaml
        steps:
          train:
            cmd: python train.py
            deps: [train.py, params.yaml]
            params: [train.n_est]
            outs: [model.json]
          report:
            cmd: echo report > report.txt
            outs: [report.txt]
        """,
    "params.yaml": """\
        # parameters of the model, as DVC reads them
        train:
          n_est: 100      # number of trees
          flag: 'yes'
          layers:
            - 8
            - 4
        prepare: {split: 0.2}
        """,
    "train.py": TRAIN,
}


def model(ws: Workspace) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(ws.read("model.json"))
    return loaded


def test_an_override_is_written_into_the_params_file_the_step_reads(ws: Workspace) -> None:
    ws.gen(DVC_REPO)
    ws.run_json()
    assert model(ws) == {"n_est": 100, "flag": "yes"}
    result = ws.run_json("train", "train.n_est=7")
    assert statuses(result) == {"train": "ran"}
    assert result["steps"][0]["reasons"][0] == "param train.n_est changed: 100 → 7"
    assert model(ws) == {"n_est": 7, "flag": "yes"}  # the script read 7 from the file
    # the file keeps its comments, quotes, layout and the other keys; only the value changed
    assert ws.read("params.yaml") == DVC_REPO_PARAMS.replace("n_est: 100 ", "n_est: 7   ")


DVC_REPO_PARAMS = (
    "# parameters of the model, as DVC reads them\n"
    "train:\n"
    "  n_est: 100      # number of trees\n"
    "  flag: 'yes'\n"
    "  layers:\n"
    "    - 8\n"
    "    - 4\n"
    "prepare: {split: 0.2}\n"
)


def test_the_cached_result_for_a_value_is_the_model_made_with_that_value(ws: Workspace) -> None:
    ws.gen(DVC_REPO)
    ws.run_json()
    ws.run_json("train.n_est=7")
    ws.gen({"params.yaml": DVC_REPO_PARAMS})  # back to 100 by hand: the 100 model is restored
    assert statuses(ws.run_json()) == {"train": "restored", "report": "cached"}
    assert model(ws)["n_est"] == 100
    # then set to 7 by hand, as a user would: the result recorded for 7 is really n_est=7
    ws.gen({"params.yaml": DVC_REPO_PARAMS.replace("n_est: 100 ", "n_est: 7   ")})
    assert statuses(ws.run_json()) == {"train": "restored", "report": "cached"}
    assert model(ws)["n_est"] == 7


def test_a_step_that_reads_the_file_without_declaring_it_still_sees_the_override(
    ws: Workspace,
) -> None:
    ws.gen(DVC_REPO).gen(
        {"ml.yaml": ws.read("ml.yaml").replace("deps: [train.py, params.yaml]", "deps: [train.py]")}
    )
    ws.run_json()
    ws.run_json("train.n_est=7")
    assert model(ws)["n_est"] == 7
    runs = ws.cli("runs", "show", "--json", ws.run_json()["run_id"])
    assert json.loads(runs.stdout)["params"]["train"]["n_est"] == 7


def test_plan_does_not_touch_the_file_but_predicts_the_run(ws: Workspace) -> None:
    ws.gen(DVC_REPO)
    ws.run_json()
    ws.run_json("train.n_est=7")
    ws.gen({"params.yaml": DVC_REPO_PARAMS})

    def plan(*overrides: str) -> tuple[str, list[str]]:
        done = ws.cli("plan", "--json", "train", *overrides)
        step = json.loads(done.stdout)[0]["steps"][0]
        return step["action"], step["reasons"]

    # the workspace holds the n_est=7 model; the file says 100
    assert plan("train.n_est=7") == ("cached", [])
    assert plan()[0] == "restore"
    action, reasons = plan("train.n_est=5")
    assert (action, reasons[0]) == ("run", "param train.n_est changed: 7 → 5")
    assert ws.read("params.yaml") == DVC_REPO_PARAMS


def test_a_string_a_yaml_reader_would_misread_is_quoted(ws: Workspace) -> None:
    ws.gen(DVC_REPO)
    ws.run_json("train.flag=no", "+train.date=2024-01-01", "~prepare")
    text = ws.read("params.yaml")
    assert '  flag: "no"\n' in text  # a plain `no` is false to PyYAML
    assert '  date: "2024-01-01"\n' in text
    assert "prepare" not in text
    assert model(ws)["flag"] == "no"


def test_multirun_runs_each_value_and_leaves_the_last_one_in_the_file(ws: Workspace) -> None:
    ws.gen(DVC_REPO)
    done = ws.cli("run", "--json", "--multirun", "train", "train.n_est=3,5")
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)
    assert [r["overrides"] for r in runs] == [["train.n_est=3"], ["train.n_est=5"]]
    assert model(ws)["n_est"] == 5
    assert "n_est: 5 " in ws.read("params.yaml")


JSON_TOML_REPO = {
    "ml.yaml": """\
        schema_version: 1
        name: formats
        params: [params.json, train.toml]
        steps:
          train:
            cmd: python train.py
            deps: [train.py, params.json, train.toml]
            params: [data, train]
            outs: [seen.json]
        """,
    "params.json": '{\n    "data": {"split": 0.2, "seed": 1}\n}\n',
    "train.toml": "# training\n[train]\nlr = 0.1  # learning rate\nepochs = 3\n",
    "train.py": """\
        import json, tomllib
        seen = {"data": json.load(open("params.json"))["data"],
                "train": tomllib.load(open("train.toml", "rb"))["train"]}
        json.dump(seen, open("seen.json", "w"))
        """,
}


def test_json_and_toml_params_files_take_overrides_too(ws: Workspace) -> None:
    ws.gen(JSON_TOML_REPO)
    ws.run_json("data.seed=2", "train.lr=0.5", "+train.momentum=0.9")
    assert json.loads(ws.read("seen.json")) == {
        "data": {"split": 0.2, "seed": 2},
        "train": {"lr": 0.5, "epochs": 3, "momentum": 0.9},
    }
    assert ws.read("params.json") == (
        '{\n    "data": {\n        "split": 0.2,\n        "seed": 2\n    }\n}\n'
    )
    assert ws.read("train.toml") == (
        "# training\n[train]\nlr = 0.5  # learning rate\nepochs = 3\nmomentum = 0.9\n"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["train.lrr=1"],
            "mlbuild: cannot apply override 'train.lrr=1': there is no parameter 'train.lrr' "
            "(did you mean 'train.lr'?); to add a new key use +train.lrr=1\n",
        ),
        (
            ["+train.lr=1"],
            "mlbuild: cannot apply override '+train.lr=1': parameter 'train.lr' already exists "
            "in train.toml; to change it use train.lr=1\n",
        ),
        (
            ["train.lr=null"],
            "mlbuild: cannot write null into train.toml: TOML has no null; remove the key with "
            "~KEY instead\n",
        ),
        (
            ["~data.seed=5"],
            "mlbuild: cannot apply override '~data.seed=5': 'data.seed' is 1 in params.json, "
            "not 5\n",
        ),
        (
            ["data.split.x=1"],
            "mlbuild: cannot apply override 'data.split.x=1': 'data.split' is 0.2 in "
            "params.json, not a mapping\n",
        ),
    ],
)
def test_an_override_the_file_cannot_take_is_refused_and_nothing_is_written(
    ws: Workspace, overrides: list[str], message: str
) -> None:
    ws.gen(JSON_TOML_REPO)
    done = ws.cli("run", *overrides)
    assert (done.returncode, done.stderr) == (2, message)
    assert ws.read("train.toml") == JSON_TOML_REPO["train.toml"]
    assert ws.read("params.json") == JSON_TOML_REPO["params.json"]
    assert not (ws.root / "seen.json").exists()


def recipe_with(params: str) -> str:
    return f"schema_version: 1\nname: bad\nparams: {params}\nsteps:\n  train: {{cmd: echo hi}}\n"


@pytest.mark.parametrize(
    ("params", "files", "message"),
    [
        (
            "missing.yaml",
            {},
            "ml.yaml:3:9: params: params file 'missing.yaml' does not exist; create it or "
            "remove it",
        ),
        (
            "../up.yaml",
            {},
            "ml.yaml:3:9: params: params file '../up.yaml' is outside the repository ({root}); "
            "use a path inside it",
        ),
        (
            "[a.yaml, .mlbuild/p.yaml]",
            {},
            "ml.yaml:3:18: params[1]: params file '.mlbuild/p.yaml' is inside .mlbuild (mlbuild's "
            "state and cache); mlbuild never reads or writes there",
        ),
        ("ml.yaml", {}, "ml.yaml:3:9: params: 'ml.yaml' is the recipe itself, not a params file"),
        (
            ".git/config.yaml",
            {},
            "ml.yaml:3:9: params: params file '.git/config.yaml' is inside .git (git's own "
            "files); mlbuild never reads or writes there",
        ),
        (
            "sub/.GIT/config.yaml",
            {},
            "ml.yaml:3:9: params: params file 'sub/.GIT/config.yaml' is inside .git (git's own "
            "files); mlbuild never reads or writes there",
        ),
        (
            "{config_dir: ../conf}",
            {},
            "ml.yaml:3:22: params.config_dir: '../conf' is outside the repository ({root}); use "
            "a path inside it",
        ),
        (
            "params.yaml",
            {"params.yaml": "train:\n  lr: 1\n  lr: 2\n"},
            "params.yaml:3:3: train.lr: duplicate key 'lr' (first defined at line 2); a key "
            "may appear once per mapping",
        ),
        (
            "params.yaml",
            {"params.yaml": "- a\n- b\n"},
            "params.yaml:1:1: expected a mapping of parameters, got a list",
        ),
        (
            "params.json",
            {"params.json": '{"a": 1,}'},
            "params.json:1:9: JSON syntax error: Expecting property name enclosed in double quotes",
        ),
        (
            "params.toml",
            {"params.toml": "a = = 1\n"},
            "params.toml:1:5: TOML syntax error: Invalid value",
        ),
        (
            "params.yaml",
            {"params.yaml": b"a: \xff\xfe\n"},
            "params.yaml: params file is not UTF-8 text: 'utf-8' codec can't decode byte 0xff "
            "in position 3: invalid start byte",
        ),
        (
            "[a.yaml, b.yaml]",
            {"a.yaml": "train: {lr: 1}\n", "b.yaml": "train: {seed: 1}\n"},
            "ml.yaml:3:18: params[1]: parameter 'train' is in both a.yaml and b.yaml; a "
            "top-level key comes from one source",
        ),
    ],
)
def test_a_bad_params_file_is_reported_at_its_line_with_exit_2(
    ws: Workspace, params: str, files: dict[str, object], message: str
) -> None:
    ws.gen({"ml.yaml": recipe_with(params), "a.yaml": "a: 1\n", **files})
    done = ws.cli("run")
    assert done.returncode == 2
    expected = message.format(root=ws.root) if "{root}" in message else message
    assert done.stderr.startswith(f"mlbuild: {expected}\n"), done.stderr
    assert "Traceback" not in done.stderr


def test_a_params_file_that_is_a_symlink_out_of_the_workspace_is_refused(
    ws: Workspace, tmp_path: object
) -> None:
    outside = ws.root.parent / "secret.yaml"
    outside.write_text("a: 1\n")
    os.symlink(outside, ws.root / "params.yaml")
    ws.gen({"ml.yaml": recipe_with("params.yaml")})
    done = ws.cli("run")
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"mlbuild: ml.yaml:3:9: params: params file 'params.yaml' resolves through the symlink "
        f"'params.yaml' to '{outside}', which is outside the repository ({ws.root}); use a path "
        "inside it, or replace the symlink with a real directory\n"
    )


def test_a_params_file_reached_through_a_symlinked_folder_into_git_is_refused(
    ws: Workspace,
) -> None:
    ws.gen({".git/p.yaml": "a: 1\n"})
    os.symlink(".git", ws.root / "conf")
    ws.gen({"ml.yaml": recipe_with("conf/p.yaml")})
    done = ws.cli("run")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "mlbuild: ml.yaml:3:9: params: params file 'conf/p.yaml' resolves through the symlink "
        "'conf' to '.git/p.yaml', which is inside .git (git's own files); mlbuild never reads "
        "or writes there, or replace the symlink with a real directory\n"
    ), done.stderr


def test_a_huge_params_file_is_refused_without_reading_it(ws: Workspace) -> None:
    with open(ws.root / "params.yaml", "wb") as handle:
        handle.truncate(17 * 1024 * 1024)
    ws.gen({"ml.yaml": recipe_with("params.yaml")})
    done = ws.cli("run")
    assert done.returncode == 2
    assert "params file 'params.yaml' is 17825792 bytes; a params file holds at most 16 MiB" in (
        done.stderr
    )


def test_an_empty_params_file_is_no_parameters(ws: Workspace) -> None:
    ws.gen({"ml.yaml": recipe_with("params.yaml"), "params.yaml": ""})
    assert statuses(ws.run_json()) == {"train": "ran"}
    ws.run_json("+seed=3")
    assert ws.read("params.yaml") == "seed: 3\n"


FILES_AND_VALUES = """\
schema_version: 1
name: mixed
params:
  files: [params.yaml]
  values: {seed: 1, tag: "run-${seed}"}
steps:
  train:
    cmd: echo ${params.train.n_est} ${params.tag} > out.txt
    params: [train, seed]
    outs: [out.txt]
"""


def test_overrides_go_to_the_source_that_holds_the_key(ws: Workspace) -> None:
    ws.gen({"ml.yaml": FILES_AND_VALUES, "params.yaml": "train: {n_est: 1}\n"})
    ws.run_json("train.n_est=2", "seed=5")
    assert ws.read("out.txt") == "2 run-5\n"
    assert ws.read("params.yaml") == "train: {n_est: 2}\n"  # the file, not the inline values


def test_editing_a_params_file_needs_no_hydra_and_a_no_op_run_no_yaml(ws: Workspace) -> None:
    ws.gen(DVC_REPO)
    ws.run_json()
    ws.gen({"params.yaml": DVC_REPO_PARAMS.replace("100", "101")})
    probe = (
        "import sys\n"
        "from mlbuild.cli.main import main\n"
        "code = main(['run', '-q'])\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(code, sorted({'hydra', 'omegaconf', 'ruamel'} & top), 'yaml' in top)\n"
    )
    assert ws.cli_python(probe).stdout.strip().splitlines()[-1] == "0 [] True"
    top_no_op = probe.replace("'yaml' in top", "sorted({'pydantic', 'yaml'} & top)")
    assert ws.cli_python(top_no_op).stdout.strip().splitlines()[-1] == "0 [] []"


def test_a_full_disk_changes_no_params_file_and_runs_nothing(ws: Workspace) -> None:
    comment = "# " + "x" * 200_000 + "\n"  # a big file, small parameters
    recipe = DVC_REPO["ml.yaml"].replace("params: params.yaml", "params: [a.yaml, params.yaml]")
    ws.gen({**DVC_REPO, "ml.yaml": recipe, "a.yaml": "a: 1\n"})
    ws.gen({"params.yaml": comment + DVC_REPO_PARAMS})
    ws.run_json()
    overrides = ["a=2", "train.n_est=7"]
    assert ws.cli("plan", *overrides).returncode == 0  # compiles the graph, writes nothing
    limited = (  # a file may not grow past 150 kB: a.yaml can be written, params.yaml cannot
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))\n"
        "from mlbuild.cli.main import main\n"
        f"sys.exit(main(['run', *{overrides!r}]))\n"
    )
    done = ws.cli_python(limited)
    assert (done.returncode, done.stderr) == (
        1,
        "mlbuild: cannot write the overrides into params.yaml: File too large; no step ran and "
        "no params file changed\n",
    )
    assert ws.read("params.yaml") == comment + DVC_REPO_PARAMS
    assert ws.read("a.yaml") == "a: 1\n"
    assert [p.name for p in ws.root.iterdir() if p.name.endswith(".tmp")] == []
    assert model(ws)["n_est"] == 100


def test_editing_inline_params_or_a_plain_override_needs_no_hydra_and_a_cast_does(
    ws: Workspace,
) -> None:
    ws.recipe(
        "schema_version: 1\nname: inline\nparams: {train: {lr: 0.1}}\n"
        "steps:\n  train: {cmd: 'echo ${params.train.lr} > out.txt', outs: [out.txt]}\n"
    )
    ws.run_json()
    ws.gen({"ml.yaml": ws.read("ml.yaml").replace("0.1", "0.2")})
    probe = (
        "import sys\n"
        "from mlbuild.cli.main import main\n"
        "code = main(['run', '-q', *sys.argv[1:]])\n"
        "print(code, 'hydra' in {m.split('.')[0] for m in sys.modules})\n"
    )
    assert ws.cli_python(probe).stdout.strip().splitlines()[-1] == "0 False"
    assert ws.read("out.txt") == "0.2\n"
    done = ws.cli_python(probe.replace("sys.argv[1:]", "['train.lr=0.3']"))
    assert done.stdout.strip().splitlines()[-1] == "0 False"  # mlbuild.params.plain
    assert ws.read("out.txt") == "0.3\n"
    done = ws.cli_python(probe.replace("sys.argv[1:]", "['train.lr=float(3)']"))
    assert done.stdout.strip().splitlines()[-1] == "0 True"  # a cast: Hydra's grammar
    assert ws.read("out.txt") == "3.0\n"


def test_init_in_a_dvc_style_repository_uses_its_params_file(ws: Workspace) -> None:
    ws.gen({"params.yaml": DVC_REPO_PARAMS, "train.py": TRAIN})
    assert ws.cli("init").returncode == 0
    recipe = ws.read("ml.yaml")
    assert "params: params.yaml  # overrides (key=value) are written into it\n" in recipe
    assert "    deps: [train.py, params.yaml]\n" in recipe
    assert ws.cli("validate").returncode == 0
