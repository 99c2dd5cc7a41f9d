"""A symlink loop inside a dep folder is the user's to fix: `plan` names the entry relative to
the workspace, located at the dep in ml.yaml (exit 2, as the fence's own loop refusal); `run`
fails the step with the same words. Neither crashes nor walks the loop down to the kernel's limit.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import Workspace
from tests.graph.test_paths import git_repo

RECIPE = """\
schema_version: 1
name: demo
steps:
  s:
    cmd: "cat d/f > out.txt"
    deps: [d]
    outs: [out.txt]
"""

LOOPS = {  # the links, and the entries the error may name
    "itself": ({"d/loop": "loop"}, {"d/loop"}),
    "a pair": ({"d/a": "b", "d/b": "a"}, {"d/a", "d/b"}),  # whichever the listing meets first
    "the folder": ({"d/self": "."}, {"d/self"}),
    "the workspace": ({"d/up": ".."}, {"d/up"}),
    "a folder beside": ({"d/e": "../e", "e/d": "../d"}, {"d/e/d"}),
    "deeper down": ({"d/sub/back": "../.."}, {"d/sub/back"}),
}


def loop_ws(ws: Workspace, links: dict[str, str]) -> Workspace:
    git_repo(ws.recipe(RECIPE).gen({"d": {"f": "data\n", "sub": {}}, "e": {"__pycache__": {}}}))
    for link, target in links.items():
        os.symlink(target, ws.root / link)
    return ws


@pytest.mark.parametrize("kind", LOOPS)
def test_plan_names_the_looping_entry_at_the_dep(ws: Workspace, kind: str) -> None:
    links, named = LOOPS[kind]
    done = loop_ws(ws, links).cli("plan")
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert done.stderr.splitlines()[0] in {
        f"mlbuild: ml.yaml:6:12: steps.s.deps[0]: '{entry}' goes through a symlink loop; "
        "remove the loop"
        for entry in named
    }, done.stderr


def test_run_fails_the_step_with_the_same_words(ws: Workspace) -> None:
    done = loop_ws(ws, {"d/self": "."}).cli("run")
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
    assert (
        "s: FAILED: ml.yaml:6:12: steps.s.deps[0]: 'd/self' goes through a symlink loop; "
        "remove the loop" in done.stdout
    )
    assert not (ws.root / "out.txt").exists()


@pytest.mark.parametrize(
    "links",
    [
        {"d/inner": "sub"},  # to a folder below: reached twice, never again through itself
        {"d/other": "../e"},  # to a folder beside, which links nowhere back
        {"d/x": "../e", "d/y": "../e"},  # one folder reached by two links is no loop
        # back above only through a folder the walk skips: walked once
        {"d/p": "../e/__pycache__", "e/__pycache__/back": ".."},
    ],
)
def test_links_that_do_not_loop_are_walked(ws: Workspace, links: dict[str, str]) -> None:
    loop_ws(ws, links).gen({"e/g": "beside\n", "d/sub/h": "below\n"})
    done = ws.cli("run")
    assert done.returncode == 0, done.stderr
    assert ws.read("out.txt") == "data\n"
