"""Hostile YAML: alias bombs, deep nesting, huge files and recursive aliases are refused at the
line that crosses a limit (mlbuild/recipe/limits.py), quickly and in bounded memory — in the
recipe, in Hydra config files and in metrics files; legitimate anchors keep working."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlbuild.errors import RecipeError
from mlbuild.recipe import parse_recipe, safe_load_yaml
from mlbuild.recipe.limits import MAX_ALIASES, MAX_DEPTH, MAX_EXPANDED, MAX_NODES
from tests.conftest import CHILD_ENV, Workspace

HEAD = "schema_version: 1\nname: demo\nsteps: {s: {cmd: echo, outs: [o.txt]}}\n"
MEMORY_CAP = 1024**3  # the address space a child may use: a regression dies, it cannot swap
RSS_BOUND_KB = 300 * 1024  # generous: `validate` itself needs ~90 MB


def laughs(levels: int = 9, width: int = 9) -> str:
    """The billion laughs: each level an anchored list of ``width`` aliases to the one before."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def problems(text: str) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        parse_recipe(text)
    return [p.render().splitlines()[0] for p in caught.value.problems]


def validate(ws: Workspace, *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """``mlbuild validate`` in a child limited to :data:`MEMORY_CAP`; the child's peak RSS in KB,
    measured by a wrapper process whose only child it is."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "def cap():\n"
        f"    resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_CAP}, {MEMORY_CAP}))\n"
        "argv = [sys.executable, '-m', 'mlbuild.cli.main', 'validate', *sys.argv[1:]]\n"
        "done = subprocess.run(argv, preexec_fn=cap, capture_output=True, text=True, timeout=120)\n"
        "sys.stderr.write(done.stderr)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        cwd=ws.root,
        env={**os.environ, **CHILD_ENV},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    code, rss = done.stdout.split()
    done.returncode = int(code)
    return done, int(rss)


def test_a_500_byte_alias_bomb_fails_at_the_alias_that_crosses_the_limit(ws: Workspace) -> None:
    text = HEAD + laughs()
    assert len(text) < 600
    done, rss = validate(ws.recipe(text))
    assert done.returncode == 2
    assert done.stderr.splitlines()[:3] == [
        f"mlbuild: ml.yaml:9:10: aliases expand the document by more than {MAX_EXPANDED} nodes "
        "(each alias counts as a copy of what it names); mlbuild refuses it rather than risk an "
        "alias bomb — keep large data in files that steps read",
        "    9 | l5: &l5 [*l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4]",
        "      |          ^",
    ]
    assert rss < RSS_BOUND_KB


def test_a_wide_alias_bomb_is_refused_by_its_count_of_aliases() -> None:
    text = HEAD + "x: &x 1\nmany: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    column = len("many: [") + 4 * MAX_ALIASES + 1
    assert problems(text) == [
        f"ml.yaml:5:{column}: the document uses more than {MAX_ALIASES} aliases; mlbuild refuses "
        "it rather than risk an alias bomb"
    ]


@pytest.mark.parametrize(
    ("deep", "where"),
    [
        ("deep:\n" + "".join(f"{'  ' * (i + 1)}k:\n" for i in range(1000)), "103:199"),
        ("deep:\n" + "".join(f"{'  ' * (i + 1)}-\n" for i in range(1000)), "104:201"),
        ("deep: " + "[" * 500 + "]" * 500 + "\n", "4:106"),
        ("deep: " + "{a: [" * 200 + "]}" * 200 + "\n", "4:253"),
    ],
    ids=["block mappings", "block sequences", "flow sequences", "flow mixed"],
)
def test_deep_nesting_is_refused_where_it_crosses_the_limit(deep: str, where: str) -> None:
    assert problems(HEAD + deep) == [
        f"ml.yaml:{where}: the document nests deeper than {MAX_DEPTH} levels"
    ]


def test_a_nesting_bomb_of_100_000_brackets_is_refused() -> None:
    (found,) = problems(HEAD + "deep: " + "[" * 100_000 + "]" * 100_000 + "\n")
    # libyaml's own limit (1000 levels) may speak first; either way, a located error
    assert found.startswith("ml.yaml:4:")
    assert "nest" in found


def test_an_alias_cannot_make_a_shallow_document_deep() -> None:
    chain = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]" for i in range(1, 12)]
    (found,) = problems(HEAD + "\n".join(chain) + "\n")
    assert found.startswith("ml.yaml:14:")
    assert f"nests deeper than {MAX_DEPTH} levels (the alias *a9 expanded)" in found


def test_a_recursive_alias_is_refused() -> None:
    assert problems(HEAD + "loop: &loop [a, *loop]\n") == [
        "ml.yaml:4:17: the alias *loop is used inside the node it names; a recursive document "
        "cannot be loaded"
    ]


def test_a_50_mb_recipe_is_refused_without_being_read_whole(ws: Workspace) -> None:
    with (ws.root / "ml.yaml").open("w") as handle:
        handle.write(HEAD + "# " + "x" * 100 + "\n")
        handle.write(("# " + "x" * 1022 + "\n") * 50 * 1024)
    size = (ws.root / "ml.yaml").stat().st_size
    done, rss = validate(ws)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        f"mlbuild: ml.yaml: the file is {size} bytes, over the 4 MiB mlbuild reads from a YAML "
        "file; keep large data in files that steps read"
    )
    assert rss < size // 1024  # the child's whole peak is smaller than the file


def test_a_document_of_more_plain_values_than_the_node_bound_is_refused_where_it_crosses() -> None:
    # within 4 MiB, yet 2 million nodes would take seconds and a gigabyte to load
    (found,) = problems(HEAD + "big: [" + "1," * MAX_NODES + "1]\n")
    written = 16  # the document, HEAD's 13 nodes, the key `big` and its list
    column = len("big: [") + 2 * (MAX_NODES - written) + 1
    assert found == (
        f"ml.yaml:4:{column}: the document has more than {MAX_NODES} nodes (scalars, sequences "
        "and mappings); keep large data in files that steps read"
    )


def test_a_recipe_of_10_000_steps_that_list_deps_outs_and_params_loads() -> None:
    # the alias bound counts what aliases add, not what the file writes out: 120,000 nodes here
    steps = "".join(
        f"  s{i}: {{cmd: 'echo {i} > c/{i}.txt', deps: [c/{i - 1}.txt], outs: [c/{i}.txt], "
        "params: ['prep.*']}\n"
        for i in range(1, 10_001)
    )
    text = "schema_version: 1\nname: big\nparams: {prep: {n: 1}}\nsteps:\n" + steps
    recipe, source = parse_recipe(text)
    assert len(recipe.steps) == 10_000
    assert recipe.steps["s10000"].deps == ["c/9999.txt"]
    assert source.keys[("steps", "s10000", "params")].line == 10_004


def test_aliases_that_add_just_under_the_bound_load_and_one_node_more_is_refused() -> None:
    # an anchored list of n nodes (itself and n - 1 scalars) repeated by aliases
    width = 999
    uses = MAX_EXPANDED // (width + 1)
    anchor = "t: &t [" + ", ".join(["x"] * width) + "]\n"
    ok = anchor + "u: [" + ", ".join(["*t"] * uses) + "]\n"
    assert len(safe_load_yaml(ok)["u"]) == uses
    (found,) = problems(HEAD + ok + "v: *t\n")
    assert found.startswith("ml.yaml:6:4: aliases expand the document by more than")


def test_anchors_aliases_and_merge_keys_for_step_templates_still_work() -> None:
    text = """\
schema_version: 1
name: demo
steps:
  train_a: &train
    cmd: [python, train.py, a]
    deps: &deps [train.py, data.csv]
    outs: [a.pkl]
    env: &env {OMP_NUM_THREADS: "1"}
  train_b:
    <<: *train
    cmd: [python, train.py, b]
    outs: [b.pkl]
  evaluate:
    cmd: python evaluate.py
    deps: *deps
    env: *env
"""
    recipe, _ = parse_recipe(text)
    assert recipe.steps["train_b"].deps == ["train.py", "data.csv"]
    assert recipe.steps["train_b"].env == {"OMP_NUM_THREADS": "1"}
    assert recipe.steps["train_b"].outs == ["b.pkl"]
    assert recipe.steps["evaluate"].deps == ["train.py", "data.csv"]
    assert recipe.steps["evaluate"].env == {"OMP_NUM_THREADS": "1"}


def test_a_hydra_config_file_is_held_to_the_same_limits(ws: Workspace) -> None:
    ws.recipe(
        "schema_version: 1\nname: demo\nparams: {config_dir: conf}\n"
        "steps: {s: {cmd: [echo, '${params.lr}'], outs: [o.txt]}}\n"
    ).gen({"conf": {"config.yaml": "lr: 0.1\n" + laughs()}})
    done, rss = validate(ws)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0].startswith(
        f"mlbuild: {os.path.join('conf', 'config.yaml')}:7:10: aliases expand the document by "
        f"more than {MAX_EXPANDED} nodes"
    )
    assert rss < RSS_BOUND_KB


def test_a_bomb_in_a_metrics_file_fails_its_step_with_a_message(ws: Workspace) -> None:
    ws.recipe(
        "schema_version: 1\nname: demo\nsteps:\n"
        "  s: {cmd: cp bomb.yaml metrics.yaml, deps: [bomb.yaml], metrics: [metrics.yaml]}\n"
    ).gen({"bomb.yaml": laughs()})
    done = ws.cli("run")
    assert done.returncode == 1, done.stderr
    assert (
        f"metrics file metrics.yaml is not valid YAML: line 6, column 10: aliases expand the "
        f"document by more than {MAX_EXPANDED} nodes"
    ) in done.stderr


def test_other_yaml_mlbuild_reads_is_bounded_too() -> None:
    with pytest.raises(ValueError, match=f"expand the document by more than {MAX_EXPANDED} nodes"):
        safe_load_yaml(laughs())
    assert safe_load_yaml("a: &a {x: 1}\nb: *a\n") == {"a": {"x": 1}, "b": {"x": 1}}


def test_sigterm_during_validate_exits_130_at_once(ws: Workspace) -> None:
    steps = "".join(f"  s{i}: {{cmd: [echo, '{i}'], outs: [o{i}.txt]}}\n" for i in range(12_000))
    ws.recipe("schema_version: 1\nname: demo\nsteps:\n" + steps)
    proc = ws.start("validate")
    maps = Path(f"/proc/{proc.pid}/maps")
    while proc.poll() is None and "_yaml" not in maps.read_text():  # parsing has begun
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err, out) == (130, "mlbuild: interrupted\n", "")
