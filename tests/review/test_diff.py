"""``mlbuild diff`` on a real git history: one kind of change per commit, read as a reviewer would.

The repository (``history.py``) has a Hydra config tree, a DVC-tracked dataset (its ``.dvc`` file),
a requirements lock and four steps; commits v2…v7 change, in turn, a step's command, a Hydra config
file, the data version, the lock, and add and remove a step. Every diff runs the real CLI.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from mlbuild.store import STORE_FILE
from tests.conftest import Workspace
from tests.review.history import History, review_history


@pytest.fixture
def repo(ws: Workspace) -> Workspace:
    review_history(ws)
    return ws


def diff_json(ws: Workspace, *args: str) -> dict[str, Any]:
    done = ws.cli("diff", "--json", *args)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def steps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in report["steps"]}


GOLDEN = """\
#### mlbuild diff `v1` (44b1d8944dad) → `v7` (e9800eb0871a)

**At `v7`: 4 of 4 steps run (`prepare`, `train`, `report`, `evaluate`); changed: steps 1 added, \
3 changed, 1 removed, 1 param, 1 dataset, 3 packages**

**Steps**

| step | change | at `v7` | why |
|---|---|---|---|
| `prepare` | changed | runs | `dataset raw changed (8048d9a2 → 5e6f7a8b); environment lock \
requirements.lock changed` |
| `train` | changed | `after prepare` | `command changed: 'python src/train.py --lr 0.1' → \
'python src/train.py --lr 0.05 --epochs 3'; param train.lr changed: 0.1 → 0.05; environment lock \
requirements.lock changed; upstream 'prepare' re-runs` |
| `report` | changed | `after train` | `environment lock requirements.lock changed; upstream \
'train' re-runs` |
| `evaluate` | added | `after train` | `new step` |
| `lint` | removed | — |  |

**Step declarations**

| step | field | `v1` | `v7` |
|---|---|---|---|
| `train` | `cmd` | `python src/train.py --lr 0.1` | `python src/train.py --lr 0.05 --epochs 3` |

**Params**

| param | `v1` | `v7` |
|---|---|---|
| `train.lr` | `0.1` | `0.05` |

**Data**

| dataset | `v1` | `v7` |
|---|---|---|
| `raw` | `dvc 8048d9a2b3e5` | `dvc 5e6f7a8b9c0d` |

**Packages**

| package | `v1` | `v7` | change |
|---|---|---|---|
| `numpy` | `1.26.4` | `2.0.1` | upgraded |
| `pandas` | — | `2.2.2` | added |
| `six` | `1.16.0` | — | removed |
"""


def test_every_kind_of_change_in_one_merge_request_comment(repo: Workspace) -> None:
    done = repo.cli("diff", "v1", "v7", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert done.stdout == GOLDEN
    assert done.stderr == ""


def test_the_report_written_to_a_file_is_the_same(repo: Workspace) -> None:
    done = repo.cli("diff", "v1..v7", "--format", "markdown", "-o", "report.md")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert repo.read("report.md") == GOLDEN


def test_a_changed_command_is_the_step_that_re_runs(repo: Workspace) -> None:
    report = diff_json(repo, "v1", "v2")
    train = steps(report)["train"]
    assert train["change"] == "changed"
    assert train["fields"] == [
        {
            "path": "cmd",
            "old": "python src/train.py --lr 0.1",
            "new": "python src/train.py --lr 0.1 --epochs 3",
        }
    ]
    assert train["reasons"] == [
        "command changed: 'python src/train.py --lr 0.1' → "
        "'python src/train.py --lr 0.1 --epochs 3'"
    ]
    assert steps(report)["report"]["after"] == ["train"]
    assert steps(report)["prepare"]["change"] == "unchanged"
    assert report["params"] == report["data"] == report["packages"] == []


def test_a_hydra_config_file_edit_shows_as_the_param_leaves_it_changes(repo: Workspace) -> None:
    report = diff_json(repo, "v2", "v3")
    assert report["params"] == [{"path": "train.lr", "old": 0.1, "new": 0.05}]
    train = steps(report)["train"]
    assert "param train.lr changed: 0.1 → 0.05" in train["reasons"]
    assert steps(report)["prepare"]["reasons"] == []  # it reads data.*, not train.*


def test_a_new_data_version_re_runs_the_steps_that_read_it(repo: Workspace) -> None:
    report = diff_json(repo, "v3", "v4")
    assert report["data"] == [
        {
            "name": "raw",
            "old": "dvc 8048d9a2b3e5f6a7c8d9e0f1a2b3c4d5",
            "new": "dvc 5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
        }
    ]
    assert steps(report)["prepare"]["reasons"] == ["dataset raw changed (8048d9a2 → 5e6f7a8b)"]
    assert steps(report)["train"]["after"] == ["prepare"]
    assert steps(report)["lint"]["reruns"] is False


def test_a_lock_upgrade_lists_packages_and_re_runs_every_step(repo: Workspace) -> None:
    report = diff_json(repo, "v4", "v5")
    assert report["packages"] == [
        {"name": "numpy", "old": "1.26.4", "new": "2.0.1", "change": "upgraded"},
        {"name": "pandas", "old": None, "new": "2.2.2", "change": "added"},
        {"name": "six", "old": "1.16.0", "new": None, "change": "removed"},
    ]
    for step in report["steps"]:
        assert step["reasons"] == ["environment lock requirements.lock changed"], step


def test_an_added_and_a_removed_step(repo: Workspace) -> None:
    added = steps(diff_json(repo, "v5", "v6"))
    assert added["evaluate"]["change"] == "added"
    assert added["evaluate"]["at_b_after"] == ["train"]
    # lint reads the whole src/ directory, which gained evaluate.py
    assert added["lint"]["change"] == "changed"
    assert added["lint"]["reasons"][0].startswith("dep src changed (")
    removed = steps(diff_json(repo, "v6", "v7"))
    assert removed["lint"] == {
        "name": "lint",
        "change": "removed",
        "fields": [],
        "reasons": [],
        "after": [],
        "reruns": False,
        "at_b": None,
        "at_b_after": [],
        "fingerprint": None,
    }


def test_the_json_report_has_every_section_with_its_types(repo: Workspace) -> None:
    report = diff_json(repo, "v1", "v7")
    assert set(report) == {
        "a",
        "b",
        "unchanged",
        "steps",
        "params",
        "data",
        "environment",
        "packages",
        "lock_errors",
        "model",
        "gates",
        "searches",
        "package",
        "sections",
        "metrics",
        "notes",
    }
    for side, tag in (("a", "v1"), ("b", "v7")):
        assert report[side]["label"] == tag
        assert report[side]["kind"] == "revision"
        assert len(report[side]["commit"]) == 40
    assert report["unchanged"] is False
    assert report["metrics"] is None  # no run store in this repository
    for step in report["steps"]:
        assert step["change"] in ("added", "removed", "changed", "unchanged")
        assert step["at_b"] in ("run", "cached", "pending", None)
        assert isinstance(step["reasons"], list) and isinstance(step["after"], list)
        if step["at_b"] in ("run", "cached"):
            assert len(step["fingerprint"]) == 64
    for change in report["params"] + report["environment"] + report["model"] + report["package"]:
        assert set(change) == {"path", "old", "new"}
    assert report["gates"] == report["searches"] == []  # the history has none; see test_diff_gates


def test_nothing_changed_is_one_line(repo: Workspace) -> None:
    done = repo.cli("diff", "v7", "HEAD")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == (
        "At HEAD: 4 of 4 steps run (prepare, train, report, evaluate); nothing that affects the "
        "pipeline changed from v7"
    )


def test_other_sections_are_compared_as_key_paths(repo: Workspace, tmp_path: Path) -> None:
    # a section the diff has no rules for (as later issues add search, tests, deploy) still shows
    old = tmp_path / "old.yaml"
    new = tmp_path / "new.yaml"
    recipe = "schema_version: 1\nname: a\nsteps: {s: {cmd: 'true'}}\n"
    old.write_text(recipe + "store: {url: postgresql://a@db1/runs}\n")
    new.write_text(recipe.replace("name: a", "name: b") + "store: {url: postgresql://a@db2/runs}\n")
    report = diff_json(repo, str(old), str(new))
    assert report["sections"] == [
        {"path": "name", "old": "a", "new": "b"},
        {"path": "store.url", "old": "postgresql://a@db1/runs", "new": "postgresql://a@db2/runs"},
    ]
    assert report["a"] == {"label": str(old), "kind": "file", "commit": None}


def test_default_is_the_merge_base_of_the_default_branch_against_the_working_tree(
    repo: Workspace,
) -> None:
    history = History.__new__(History)
    history.ws, history.root, history.count = repo, repo.root, 10
    from tests.review.history import git

    git(repo.root, "checkout", "-q", "-b", "feature", "v3")
    history.commit("feature: more epochs", {"conf/train/default.yaml": "lr: 0.05\nepochs: 20\n"})
    (repo.root / "conf/config.yaml").write_text(
        (repo.root / "conf/config.yaml").read_text().replace("split: 0.25", "split: 0.3")
    )
    report = diff_json(repo)
    assert report["a"]["label"] == "main (merge base)"
    assert report["a"]["commit"] == git(repo.root, "rev-parse", "v3")
    assert report["b"]["label"] == "working tree"
    assert [(c["path"], c["old"], c["new"]) for c in report["params"]] == [
        ("train.epochs", 10, 20),
        ("data.split", 0.25, 0.3),
    ]
    # main...HEAD: the merge base too, against the commit (the uncommitted edit is not in it)
    committed = diff_json(repo, "main...HEAD")
    assert committed["a"]["label"] == "main...HEAD (merge base)"
    assert [c["path"] for c in committed["params"]] == ["train.epochs"]


# ---- what a run at B does with the cache, and the metrics of recorded runs --------------------

RUNNABLE = """\
schema_version: 1
name: cached
params: {n: 1, m: 1}
steps:
  a:
    cmd: echo a-${params.n} > a.txt
    params: [n]
    outs: [a.txt]
  b:
    cmd: cat a.txt > b.txt && cp "$MLBUILD_PARAMS" score.json
    deps: [a.txt]
    params: [m]
    outs: [b.txt]
    metrics: [score.json]
  c:
    cmd: cat b.txt > c.txt
    deps: [b.txt]
    outs: [c.txt]
"""


def test_what_comes_from_the_cache_and_the_metrics_of_both_sides(ws: Workspace) -> None:
    History(ws).commit("runnable", {"ml.yaml": RUNNABLE, ".gitignore": "*.txt\nscore.json\n"})
    assert ws.cli("run", "-q").returncode == 0
    ws.recipe(RUNNABLE.replace("params: {n: 1, m: 1}", "params: {n: 1, m: 2}"))

    before = ws.cli("diff", "HEAD")
    assert before.returncode == 0, before.stderr
    lines = before.stdout.splitlines()
    assert lines[1] == (
        "At working tree: 2 of 3 steps run (b, c), 1 from the cache; changed: steps 1 changed, "
        "1 param"
    )
    assert lines[5:8] == [
        "  a     unchanged  from the cache",
        "  b     changed    runs             param m changed: 1 → 2",
        "  c     unchanged  after b          upstream 'b' re-runs",
    ]
    # HEAD's run is recorded; none of this working tree's state yet
    assert before.stdout.endswith(
        "working tree (no run)  CHANGE\n  m       1                    —\n"
    )

    assert ws.cli("run", "-q").returncode == 0
    after = diff_json(ws, "HEAD")
    assert [s["at_b"] for s in after["steps"]] == ["cached", "cached", "cached"]
    metrics = after["metrics"]
    assert metrics["a"]["metrics"] == {"m": 1} and metrics["a"]["dirty"] is False
    assert metrics["b"]["metrics"] == {"m": 2} and metrics["b"]["dirty"] is True
    # an unchanged store answers from the memo of its state, without loading SQLAlchemy (a
    # memo is written only for a store last written more than a tick ago)
    time.sleep(1.1)
    assert diff_json(ws, "HEAD")["metrics"] == metrics
    probe = ws.cli_python(
        "import sys\n"
        "from mlbuild.cli.main import main\n"
        "code = main(['diff', '--json', 'HEAD'])\n"
        "print('SQLALCHEMY', 'sqlalchemy' in sys.modules, code, file=sys.stderr)"
    )
    assert "SQLALCHEMY False 0" in probe.stderr, probe.stderr
    assert json.loads(probe.stdout)["metrics"] == metrics


def test_a_store_written_within_the_last_tick_is_not_memoized(ws: Workspace) -> None:
    """A write in the same tick as the memo's stat could leave every stat as it was: the memo
    would answer the runs before it. A store whose last write is not a tick old is read again."""
    History(ws).commit("runnable", {"ml.yaml": RUNNABLE, ".gitignore": "*.txt\nscore.json\n"})
    assert ws.cli("run", "-q").returncode == 0
    assert diff_json(ws, "HEAD")["metrics"]["a"]["metrics"] == {"m": 1}  # reads the journal in
    memo = ws.root / ".mlbuild" / "review" / "runs.json"
    memo.unlink(missing_ok=True)
    store = ws.root / ".mlbuild" / STORE_FILE
    time.sleep(1.1)
    soon = time.time() + 3600  # stands for "written in this very tick", however slow the diff
    os.utime(store, (soon, soon))
    assert diff_json(ws, "HEAD")["metrics"]["a"]["metrics"] == {"m": 1}
    assert not memo.exists()

    os.utime(store, (soon - 7200, soon - 7200))
    time.sleep(1.1)  # the ctime the utime set, a tick old
    assert diff_json(ws, "HEAD")["metrics"]["a"]["metrics"] == {"m": 1}
    assert memo.exists()


def test_a_diff_reads_the_run_metrics_only_of_its_overrides(ws: Workspace) -> None:
    History(ws).commit("runnable", {"ml.yaml": RUNNABLE, ".gitignore": "*.txt\nscore.json\n"})
    assert ws.cli("run", "-q", "m=5").returncode == 0
    plain = diff_json(ws, "HEAD")
    assert plain["metrics"] == {"a": None, "b": None}
    with_override = diff_json(ws, "HEAD", "m=5")
    assert with_override["metrics"]["a"]["metrics"] == {"m": 5}
    assert [s["at_b"] for s in with_override["steps"]] == ["cached", "cached", "cached"]


# ---- bad input: each a clear message and exit 2 -----------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["v1..-x"],
            "mlbuild: '-x' is not a revision: a revision never starts with '-' (to compare "
            "against a file of that name, write ./-x)\n",
        ),
        (
            ["nope"],
            "mlbuild: unknown revision 'nope'; name a branch, tag or commit (`git log --oneline` "
            "lists commits)\n",
        ),
        (
            ["v1", "v2", "v3"],
            "mlbuild: expected at most two revisions or recipe files, got 3: v1 v2 v3\n",
        ),
        (
            ["v1..nope"],
            "mlbuild: unknown revision 'nope'; name a branch, tag or commit "
            "(`git log --oneline` lists commits)\n",
        ),
    ],
)
def test_bad_revisions(repo: Workspace, args: list[str], message: str) -> None:
    done = repo.cli("diff", *args)
    assert (done.returncode, done.stderr, done.stdout) == (2, message, "")


def test_an_option_smuggled_as_a_revision_runs_nothing(repo: Workspace, tmp_path: Path) -> None:
    target = tmp_path / "written-by-git"
    for args in (
        [f"--upload-pack=touch {target}"],  # not an option of diff
        [f"v1..--upload-pack=touch {target}"],  # read as a Hydra override, and refused
        [f"v1..-o{target}"],  # a revision that would be an option to git
        [f"v1...-o{target}"],
    ):
        done = repo.cli("diff", *args)
        assert done.returncode == 2, done
        assert "Traceback" not in done.stderr
    assert not target.exists()


def test_a_revision_without_a_recipe(ws: Workspace) -> None:
    history = History(ws)
    history.commit("only code", {"README.md": "hello\n"}, tag="early")
    history.commit("a recipe", {"ml.yaml": RUNNABLE})
    done = ws.cli("diff", "early")
    assert done.returncode == 2
    assert done.stderr.startswith("mlbuild: revision 'early' (")
    assert done.stderr.endswith(
        ") has no ml.yaml: the recipe did not exist there yet, or it moved; name another revision\n"
    )


def test_a_recipe_invalid_at_one_side_names_that_side(repo: Workspace) -> None:
    history = History.__new__(History)
    history.ws, history.root, history.count = repo, repo.root, 20
    recipe = repo.read("ml.yaml")
    history.commit(
        "typo", {"ml.yaml": recipe.replace("    outs: [out/model.txt]", "    outz: [x]")}, tag="bad"
    )
    done = repo.cli("diff", "v7", "bad")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "mlbuild: bad:ml.yaml:17:5: steps.train.outz: unknown key 'outz' (did you mean 'outs'?)"
    )
    assert done.stderr.endswith("1 problem in bad:ml.yaml\n")
    assert "review/trees" not in done.stderr  # never the copy's path


def _commit_raw(ws: Workspace, tag: str, write: Any) -> None:
    from tests.review.history import git

    write(ws.root)
    git(ws.root, "add", "-A")
    git(ws.root, "commit", "-q", "-m", tag, stamp=99)
    git(ws.root, "tag", tag)
    git(ws.root, "checkout", "-q", "v7")  # the working tree holds a good recipe again


@pytest.mark.parametrize(
    "pointee",
    ["/etc/hostname", "../outside.yaml", "sub/../../outside.yaml", "../" * 30 + "etc/hostname"],
)
def test_a_recipe_that_is_a_symlink_out_of_the_repository(repo: Workspace, pointee: str) -> None:
    (repo.root.parent / "outside.yaml").write_text(repo.read("ml.yaml"))

    def write(root: Path) -> None:
        (root / "ml.yaml").unlink()
        (root / "ml.yaml").symlink_to(pointee)

    _commit_raw(repo, "linked", write)
    done = repo.cli("diff", "v7", "linked")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: at revision 'linked', ml.yaml is a symlink that leads out of the repository; "
        "mlbuild reads a recipe only from inside it\n",
    )


def test_a_yaml_bomb_at_a_revision_is_refused_at_its_line(repo: Workspace) -> None:
    bomb = "schema_version: 1\nname: bomb\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [{', '.join([f'*{prev}'] * 10)}]\n"
    bomb += "steps: {s: {cmd: 'true'}}\n"
    _commit_raw(repo, "bomb", lambda root: (root / "ml.yaml").write_text(bomb))
    done = repo.cli("diff", "v7", "bomb", timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "mlbuild: bomb:ml.yaml:7:36: aliases expand the document by more than 100000 nodes"
    ), done.stderr


def test_a_recipe_that_is_not_utf8_at_a_revision(repo: Workspace) -> None:
    _commit_raw(repo, "latin1", lambda root: (root / "ml.yaml").write_bytes(b"name: caf\xe9\n"))
    done = repo.cli("diff", "v7", "latin1")
    assert done.returncode == 2
    assert done.stderr.startswith("mlbuild: latin1:ml.yaml: not UTF-8")


def test_what_git_holds_but_mlbuild_never_reads_from_a_revision(repo: Workspace) -> None:
    """A forged compiled graph committed under .mlbuild/ and a config directory that is a
    symlink out of the repository: neither is copied, and the diff says so."""

    def write(root: Path) -> None:
        forged = root / ".mlbuild" / "compiled"
        forged.mkdir(parents=True)
        (forged / "000.json").write_text('{"inputs": {}, "graph": {}}')
        (root / "conf" / "train").rename(root / "train-moved")
        (root / "conf" / "train").symlink_to("/etc")

    from tests.review.history import git

    write(repo.root)
    git(repo.root, "add", "-A", "-f")
    git(repo.root, "commit", "-q", "-m", "forged", stamp=98)
    git(repo.root, "tag", "forged")
    git(repo.root, "checkout", "-q", "v7")
    done = repo.cli("diff", "v7", "forged")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: forged:ml.yaml:4:9: params: Hydra config in conf: In 'config': Could not find "
        "'train/default' (not copied from git: .mlbuild/compiled/000.json: inside .git or "
        ".mlbuild, which mlbuild never reads from a revision; conf/train: a symlink to '/etc', "
        "outside the repository)\n"
        "    4 | params: {config_dir: conf, config_name: config}\n"
        "      |         ^\n"
        "1 problem in forged:ml.yaml\n",
    )


def test_outside_git_only_recipe_files_can_be_compared(ws: Workspace) -> None:
    ws.recipe(RUNNABLE)
    (ws.root / "other.yaml").write_text(RUNNABLE.replace("m: 1", "m: 3"))
    done = ws.cli("diff", "HEAD")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: HEAD: the workspace is not in a git repository, so there are no revisions; "
        "compare two recipe files instead: mlbuild diff OLD.yaml NEW.yaml\n",
    )
    report = diff_json(ws, "ml.yaml", "other.yaml")
    assert report["params"] == [{"path": "m", "old": 1, "new": 3}]


def test_a_lock_file_that_is_not_utf8_is_a_note_not_a_crash(repo: Workspace) -> None:
    _commit_raw(
        repo, "badlock", lambda root: (root / "requirements.lock").write_bytes(b"numpy==\xff\n")
    )
    report = diff_json(repo, "v7", "badlock")
    assert report["lock_errors"] == [
        "badlock: requirements.lock: not UTF-8 (invalid start byte at byte 7)"
    ]


def test_concurrent_diffs_of_new_revisions_agree(repo: Workspace) -> None:
    procs = [repo.start("diff", "--json", "v1", "v7") for _ in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [e for _, e in outputs]
    assert len({out for out, _ in outputs}) == 1


def test_a_revision_name_is_never_read_by_a_shell(repo: Workspace) -> None:
    done = repo.cli("diff", "v1;touch${IFS}pwned", "$(touch${IFS}pwned2)")
    assert done.returncode == 2
    assert not (repo.root / "pwned").exists()
    assert not (repo.root / "pwned2").exists()
