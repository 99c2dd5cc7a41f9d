"""A recipe edited without changing its data (a comment, indentation, flow or block style, an
alias written out) reuses the compiled graph with the new positions (mlbuild/graph/same_data.py);
any change of the data — a value of the same length, a list or mapping reordered, a type, what an
anchor holds — compiles anew, and so does an entry whose params files or environment changed, or
a pointer or entry that is damaged. Whichever way the graph is made, it is the graph a compile
from nothing makes, and errors name the line the key is on now."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlbuild.graph import compiled
from mlbuild.graph.model import Graph
from mlbuild.graph.workspace import Workspace as EngineWorkspace
from tests.conftest import Workspace, rewrite_keeping_stat

BASE = """\
schema_version: 1
name: demo
params: {train: {lr: 0.1, n: 1}}
steps:
  a: {cmd: echo a > a.txt, deps: [in1.txt, in2.txt], outs: [a.txt], params: [train.lr]}
  b:
    cmd: &twice echo b > b.txt
    deps: [a.txt]
    outs: [b.txt]
  c:
    cmd: echo c > c.txt
    outs: [c.txt]
    params: [train.n]
"""

_B = "  b:\n    cmd: &twice echo b > b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n"

SAME_DATA = {
    "a comment": "# a comment\n" + BASE.replace("  b:\n", "  # the second\n  b:\n"),
    "indentation": BASE.replace("    ", "      "),
    "flow to block": BASE.replace(
        "params: {train: {lr: 0.1, n: 1}}", "params:\n  train:\n    lr: 0.1\n    n: 1"
    ),
    "blank lines": BASE.replace("steps:\n", "\n\nsteps:\n\n"),
    "an anchor dropped": BASE.replace("&twice ", ""),
}

OTHER_DATA = {
    "a value of the same length": BASE.replace("lr: 0.1", "lr: 0.2"),
    "a command of the same length": BASE.replace("echo c > c.txt", "echo C > c.txt"),
    "a list reordered": BASE.replace("[in1.txt, in2.txt]", "[in2.txt, in1.txt]"),
    "a mapping reordered": BASE.replace("{lr: 0.1, n: 1}", "{n: 1, lr: 0.1}"),
    "steps reordered": BASE.replace(_B, "") + _B,
    "a step renamed": BASE.replace("  c:\n", "  z:\n"),
    "an int made a float": BASE.replace("n: 1}", "n: 1.0}"),
    "an int made a string": BASE.replace("n: 1}", "n: '1'}"),
    "an anchor's value": BASE.replace("cmd: &twice echo b", "cmd: &twice echo B"),
}


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each compile from now on (the real one, still answering); clear it before the step a test
    counts."""
    calls: list[str] = []
    real = compiled._compile

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("compiled")
        return real(*args, **kwargs)

    monkeypatch.setattr(compiled, "_compile", counted)
    return calls


def graph_in(root: Path) -> Graph:
    return EngineWorkspace.find(root).graph([])


def from_nothing(root: Path, text: str) -> str:
    """The graph a workspace with no cache makes of ``text``, as the JSON an entry holds."""
    fresh = root.parent / f"{root.name}-fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(root, fresh, ignore=shutil.ignore_patterns(".mlbuild"))
    (fresh / "ml.yaml").write_text(text)
    return as_json(graph_in(fresh))


def as_json(graph: Graph) -> str:
    """The graph as its entry holds it, but for the recipe's name (which names the folder)."""
    return json.dumps({**graph.to_json(), "recipe_file": Path(graph.recipe_file).name})


def edited(tmp_path: Path, text: str) -> Path:
    """A workspace compiled with :data:`BASE`, then its recipe replaced by ``text``."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("in1.txt", "in2.txt"):
        (root / name).write_text(name)
    (root / "ml.yaml").write_text(BASE)
    graph_in(root)
    (root / "ml.yaml").write_text(text)
    return root


@pytest.mark.parametrize("text", SAME_DATA.values(), ids=SAME_DATA.keys())
def test_an_edit_of_the_layout_reuses_the_graph_located_anew(
    tmp_path: Path, text: str, compiles: list[str]
) -> None:
    root = edited(tmp_path, text)
    expected = from_nothing(root, text)
    compiles.clear()
    graph = graph_in(root)
    assert as_json(graph) == expected
    assert as_json(graph_in(root)) == expected  # the entry written for the new bytes
    assert compiles == []
    assert graph.positions["steps.c.params[0]"][0] == _line_of(text, "[train.n]")


@pytest.mark.parametrize("text", OTHER_DATA.values(), ids=OTHER_DATA.keys())
def test_an_edit_of_the_data_compiles_anew(tmp_path: Path, text: str, compiles: list[str]) -> None:
    root = edited(tmp_path, text)
    expected = from_nothing(root, text)
    compiles.clear()
    assert as_json(graph_in(root)) == expected
    assert compiles == ["compiled"]


def test_an_edit_back_to_earlier_data_reuses_that_graph(
    tmp_path: Path, compiles: list[str]
) -> None:
    root = edited(tmp_path, OTHER_DATA["a value of the same length"])
    graph_in(root)
    text = "# back\n" + BASE
    (root / "ml.yaml").write_text(text)
    expected = from_nothing(root, text)
    compiles.clear()
    assert as_json(graph_in(root)) == expected
    assert compiles == []


def test_a_data_edit_in_the_same_tick_as_the_entry_is_seen(tmp_path: Path) -> None:
    """The recipe rewritten with its size, inode and mtime kept, right after the entry was
    written: the keys are the bytes and the data, never the file's stat."""
    root = edited(tmp_path, BASE)
    graph_in(root)
    for text in (BASE.replace("lr: 0.1", "lr: 0.2"), BASE.replace("n: 1}", "n: 2}")):
        rewrite_keeping_stat(root / "ml.yaml", text)
        assert as_json(graph_in(root)) == from_nothing(root, text)


def test_a_comment_edit_keeping_size_and_mtime_reuses_the_graph(
    tmp_path: Path, compiles: list[str]
) -> None:
    root = edited(tmp_path, "# one\n" + BASE)
    graph_in(root)
    text = "# two\n" + BASE
    rewrite_keeping_stat(root / "ml.yaml", text)
    expected = from_nothing(root, text)
    compiles.clear()
    assert as_json(graph_in(root)) == expected
    assert compiles == []


def test_a_params_file_changed_with_a_comment_edit_compiles_anew(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    text = BASE.replace("params: {train: {lr: 0.1, n: 1}}", "params: params.yaml")
    (root / "params.yaml").write_text("train: {lr: 0.1, n: 1}\n")
    (root / "ml.yaml").write_text(text)
    graph_in(root)
    (root / "params.yaml").write_text("train: {lr: 0.5, n: 1}\n")
    (root / "ml.yaml").write_text("# edited\n" + text)
    assert graph_in(root).steps["a"].params == {"train.lr": 0.5}


def test_an_env_var_changed_with_a_comment_edit_compiles_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLBUILD_TEST_LR", "0.1")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "in1.txt").write_text("1")
    (root / "in2.txt").write_text("2")
    text = BASE.replace("lr: 0.1", "lr: '${oc.env:MLBUILD_TEST_LR}'")
    (root / "ml.yaml").write_text(text)
    assert graph_in(root).steps["a"].params == {"train.lr": "0.1"}
    monkeypatch.setenv("MLBUILD_TEST_LR", "0.7")
    (root / "ml.yaml").write_text("# edited\n" + text)
    assert graph_in(root).steps["a"].params == {"train.lr": "0.7"}


def test_an_error_after_a_comment_edit_names_the_line_it_is_on_now(ws: Workspace) -> None:
    text = BASE.replace("    outs: [c.txt]", "    deps: [gone.txt]\n    outs: [c.txt]")
    ws.gen({"in1.txt": "1", "in2.txt": "2"}).recipe(text)
    assert "ml.yaml:12:12" in ws.cli("plan").stderr  # compiled, and cached
    ws.recipe("# one\n# two\n" + text.replace("  c:\n", "  # the third\n  c:\n"))
    again = ws.cli("plan")
    assert (again.returncode, again.stderr.splitlines()[:3]) == (
        2,
        [
            "mlbuild: ml.yaml:15:12: steps.c.deps[0]: 'gone.txt' does not exist and no step "
            "makes it; create the file or add a step that lists it in outs",
            "   15 |     deps: [gone.txt]",
            "      |            ^",
        ],
    )


def test_a_step_problem_naming_a_line_is_located_after_a_comment_edit(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A param that does not resolve says where it is written: such a graph is compiled anew."""
    monkeypatch.delenv("MLBUILD_TEST_UNSET_VAR", raising=False)
    text = BASE.replace("n: 1}", "n: '${oc.env:MLBUILD_TEST_UNSET_VAR}'}")
    ws.gen({"in1.txt": "1", "in2.txt": "2"}).recipe(text)
    first = ws.cli("plan", "c")
    assert "(written at ml.yaml:3:" in first.stdout + first.stderr, first
    ws.recipe("# one\n" + text)
    again = ws.cli("plan", "c")
    assert "(written at ml.yaml:4:" in again.stdout + again.stderr, again


@pytest.mark.parametrize(
    "pointer",
    ["not a name", "0" * 64, "../compiled/x", ""],
    ids=["garbage", "no such entry", "a path", "empty"],
)
def test_a_damaged_pointer_compiles_anew(tmp_path: Path, pointer: str, compiles: list[str]) -> None:
    root = edited(tmp_path, BASE)
    (folder,) = [root / ".mlbuild" / "same-data"]
    for path in folder.iterdir():
        path.write_text(pointer)
    text = "# edited\n" + BASE
    (root / "ml.yaml").write_text(text)
    expected = from_nothing(root, text)
    compiles.clear()
    assert as_json(graph_in(root)) == expected
    assert compiles == ["compiled"]


def test_a_pointer_to_the_entry_of_other_data_compiles_anew(tmp_path: Path) -> None:
    other = OTHER_DATA["a value of the same length"]
    root = edited(tmp_path, other)
    graph_in(root)  # two entries, two pointers
    folder = root / ".mlbuild" / "same-data"
    pointers = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)
    pointers[0].write_text(pointers[1].read_text())  # BASE's data → the other's entry
    text = "# edited\n" + BASE
    (root / "ml.yaml").write_text(text)
    assert as_json(graph_in(root)) == from_nothing(root, text)


@pytest.mark.parametrize(
    "damage",
    ["", '{"inputs": {}, "env": {}, "graph": {}}', "{"],
    ids=["empty", "no data key", "truncated"],
)
def test_a_damaged_entry_behind_a_pointer_compiles_anew(tmp_path: Path, damage: str) -> None:
    root = edited(tmp_path, BASE)
    for entry in (root / ".mlbuild" / "compiled").iterdir():
        entry.write_text(damage)
    text = "# edited\n" + BASE
    (root / "ml.yaml").write_text(text)
    assert as_json(graph_in(root)) == from_nothing(root, text)


def test_an_entry_whose_graph_is_damaged_compiles_anew(tmp_path: Path) -> None:
    root = edited(tmp_path, BASE)
    (entry,) = (root / ".mlbuild" / "compiled").iterdir()
    raw = json.loads(entry.read_text())
    raw["graph"]["steps"]["a"] = 1
    entry.write_text(json.dumps(raw))
    text = "# edited\n" + BASE
    (root / "ml.yaml").write_text(text)
    assert as_json(graph_in(root)) == from_nothing(root, text)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)
