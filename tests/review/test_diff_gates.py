"""``mlbuild diff`` on the model's gates: test gates, searches and package settings, each compared
entry by entry on a real git history — one kind of change per commit (``history.py``'s recipe plus
``tests:``, ``search:`` and ``package:``) — and read as a merge-request comment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.review.history import BASE, RECIPE, History, git

SECTIONS = """\
tests:
  accuracy:
    kind: metric
    metric: accuracy
    min: 0.85
  golden:
    kind: cases
    file: tests/golden.csv
search:
  hpo:
    step: train
    objective: {accuracy: maximize}
    space:
      train.lr: {type: float, low: 0.001, high: 1.0, log: true}
      train.epochs: [5, 10]
    sampler: tpe
    n_trials: 12
package:
  bundle: dist/demo.tar.gz
  docker: {image: demo, base: "python:3.11-slim"}
"""


def gates_history(ws: Workspace) -> History:
    """g1: the base with gates; g2: a gate tightened, one added, one removed; g3: the search
    space and budget; g4: the package's image and port."""
    history = History(ws)
    history.commit(
        "base with gates",
        {**BASE, "ml.yaml": RECIPE + SECTIONS, "tests": {"golden.csv": "a,label\n1,0\n"}},
        tag="g1",
    )
    recipe = RECIPE + SECTIONS
    tightened = recipe.replace("    min: 0.85\n", "    min: 0.9\n").replace(
        "  golden:\n    kind: cases\n    file: tests/golden.csv\n",
        "  team:\n    kind: pytest\n    path: tests/model\n",
    )
    history.commit(
        "a stricter accuracy gate; pytest instead of golden cases", {"ml.yaml": tightened}, tag="g2"
    )
    searched = tightened.replace(
        "train.lr: {type: float, low: 0.001, high: 1.0, log: true}",
        "train.lr: {type: float, low: 0.01, high: 0.5}",
    ).replace("train.epochs: [5, 10]", "train.epochs: {type: categorical, choices: [5, 10]}")
    searched = searched.replace("    n_trials: 12\n", "    n_trials: 40\n")
    history.commit("a narrower search, more trials", {"ml.yaml": searched}, tag="g3")
    packaged = searched.replace(
        '{image: demo, base: "python:3.11-slim"}',
        '{image: demo-v2, base: "python:3.11-slim", port: 9000}',
    )
    history.commit("a new image name and port", {"ml.yaml": packaged}, tag="g4")
    return history


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("gates"))
    gates_history(ws)
    return ws


def diff_json(ws: Workspace, *args: str) -> dict[str, Any]:
    done = ws.cli("diff", "--json", *args)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_which_gates_changed(repo: Workspace) -> None:
    report = diff_json(repo, "g1", "g2")
    assert report["gates"] == [
        {
            "name": "accuracy",
            "change": "changed",
            "kind": "metric",
            "fields": [{"path": "min", "old": 0.85, "new": 0.9}],
        },
        {"name": "team", "change": "added", "kind": "pytest", "fields": []},
        {"name": "golden", "change": "removed", "kind": "cases", "fields": []},
    ]
    assert report["searches"] == report["package"] == report["sections"] == []
    assert not report["unchanged"]


def test_a_search_space_is_compared_by_dimension(repo: Workspace) -> None:
    report = diff_json(repo, "g2", "g3")
    # train.epochs went from the list shorthand to {type: categorical}: the same choices, so no
    # change; train.lr is one change shown whole, not three leaves
    assert report["searches"] == [
        {
            "name": "hpo",
            "change": "changed",
            "kind": "train",
            "fields": [
                {"path": "n_trials", "old": 12, "new": 40},
                {
                    "path": "space.train.lr",
                    "old": "float [0.001, 1.0] log",
                    "new": "float [0.01, 0.5]",
                },
            ],
        }
    ]
    assert report["gates"] == report["package"] == []


def test_package_settings_are_their_own_section(repo: Workspace) -> None:
    report = diff_json(repo, "g3", "g4")
    assert report["package"] == [
        {"path": "package.docker.image", "old": "demo", "new": "demo-v2"},
        {"path": "package.docker.port", "old": None, "new": 9000},
    ]
    assert report["gates"] == report["searches"] == report["sections"] == []


GOLDEN = """\
#### mlbuild diff `g1` (56fa9ee4cf28) → `g4` (eda3d3195029)

**At `g4`: 4 of 4 steps run (`prepare`, `lint`, `train`, `report`); changed: 3 test gates \
(`accuracy`, `team`, `golden`), 1 search (`hpo`), 2 package settings**

**Steps**

| step | change | at `g4` | why |
|---|---|---|---|
| `prepare` | unchanged | runs | `no cached result for these inputs` |
| `lint` | unchanged | runs | `no cached result for these inputs` |
| `train` | unchanged | `after prepare` |  |
| `report` | unchanged | `after train` |  |

**Test gates**

| gate | change | field | `g1` | `g4` |
|---|---|---|---|---|
| `accuracy` | changed | `min` | `0.85` | `0.9` |
| `team` | added | `kind` | — | `pytest` |
| `golden` | removed | `kind` | `cases` | — |

**Searches**

| search | change | field | `g1` | `g4` |
|---|---|---|---|---|
| `hpo` | changed | `n_trials` | `12` | `40` |
| `hpo` | changed | `space.train.lr` | `float [0.001, 1.0] log` | `float [0.01, 0.5]` |

**Package**

| setting | `g1` | `g4` |
|---|---|---|
| `package.docker.image` | `demo` | `demo-v2` |
| `package.docker.port` | — | `9000` |
"""


def test_the_gates_in_one_merge_request_comment(repo: Workspace) -> None:
    done = repo.cli("diff", "g1", "g4", "--format", "markdown")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == GOLDEN


def test_an_unchanged_gate_section_is_not_a_change(repo: Workspace) -> None:
    done = repo.cli("diff", "g4", "g4")
    assert done.returncode == 0, done.stderr
    assert "nothing that affects the pipeline changed from g4" in done.stdout.splitlines()[1]


# ---- hostile ------------------------------------------------------------------------------------


def _commit_at(ws: Workspace, tag: str, recipe: bytes) -> None:
    """Commit ``recipe`` as ml.yaml under ``tag`` on a side branch, then go back to g4."""
    git(ws.root, "checkout", "-q", "-b", f"side-{tag}", "g4")
    (ws.root / "ml.yaml").write_bytes(recipe)
    git(ws.root, "commit", "-q", "-am", tag, stamp=50)
    git(ws.root, "tag", tag)
    git(ws.root, "checkout", "-q", "--detach", "g4")


def test_an_invalid_gate_at_one_side_names_the_revision_and_line(repo: Workspace) -> None:
    recipe = repo.read("ml.yaml").replace("    min: 0.9\n", "    min: high\n")
    _commit_at(repo, "badgate", recipe.encode())
    done = repo.cli("diff", "g1", "badgate")
    assert done.returncode == 2
    line = recipe.splitlines().index("    min: high") + 1
    assert done.stderr.startswith(f"mlbuild: badgate:ml.yaml:{line}:10: tests.accuracy"), (
        done.stderr
    )
    assert done.stderr.endswith("1 problem in badgate:ml.yaml\n")
    assert "Traceback" not in done.stderr


def test_an_unknown_search_dimension_type_at_one_side(repo: Workspace) -> None:
    recipe = repo.read("ml.yaml").replace(
        "train.lr: {type: float, low: 0.01, high: 0.5}", "train.lr: {type: normal, mu: 0}"
    )
    _commit_at(repo, "badspace", recipe.encode())
    done = repo.cli("diff", "badspace", "g4")
    assert done.returncode == 2
    line = recipe.splitlines().index("      train.lr: {type: normal, mu: 0}") + 1
    assert done.stderr.startswith(f"mlbuild: badspace:ml.yaml:{line}:"), done.stderr


def test_a_binary_recipe_at_one_side(repo: Workspace) -> None:
    _commit_at(repo, "binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    done = repo.cli("diff", "g4", "binary")
    assert done.returncode == 2
    assert done.stderr.startswith("mlbuild: binary:ml.yaml: not UTF-8"), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["g99", "g1..g99", "g1^^^^^^^^^", "0" * 40])
def test_a_revision_that_does_not_exist(repo: Workspace, name: str) -> None:
    done = repo.cli("diff", name)
    assert done.returncode == 2
    assert done.stderr.startswith("mlbuild: "), done.stderr
    assert "not a revision" in done.stderr or "unknown revision" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
