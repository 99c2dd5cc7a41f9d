"""Plain ``key=value`` overrides without Hydra: the proof that they give exactly what Hydra gives.

Each row of the table is run through Hydra's own grammar and compose (imported for real) and
through :mod:`mlbuild.params.plain`; wherever the plain path answers, the parsed override and the
composed config must be identical, types included (``1`` is not ``1.0`` nor ``True``). Each row
also pins whether the plain path answers at all, so that narrowing or widening it shows here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlbuild.errors import Problem
from mlbuild.params.compose import Composed, compose_config
from mlbuild.params.plain import compose_plain, inline_sweeper, parse_plain
from mlbuild.params.selection import flatten
from tests.conftest import Workspace

VALUES: dict[str, Any] = {
    "a": 1,
    "b": "text",
    "c": 0.5,
    "d": True,
    "e": None,
    "n": {"m": 2, "s": "t", "deep": {"x": 1.5}},
    "l": [1, {"k": "v"}],
    "empty": {},
}

FAST = True
HYDRA = False

# (override, whether the plain path reads it)
LINES: list[tuple[str, bool]] = [
    *[(f"a={v}", FAST) for v in ("2", "-3", "+4", "0", "-0", "123456789012345678901234567890")],
    *[(f"a={v}", HYDRA) for v in ("007", "1_000", "0x10", " 1", "1 ")],
    *[(f"a={v}", FAST) for v in ("1.5", "-0.25", "+0.5", "1e5", "1E-3", "2.5e+3", "0.0")],
    *[(f"a={v}", HYDRA) for v in (".5", "1.", "1_0.5", "inf", "-inf", "nan", "NaN", "1e")],
    *[(f"a={v}", FAST) for v in ("true", "false", "null")],
    *[(f"a={v}", HYDRA) for v in ("True", "FALSE", "NULL", "Null")],
    *[(f"a={v}", FAST) for v in ("word", "with-dash", "path/to/file.csv", "data.v2", "_x")],
    *[(f"a={v}", FAST) for v in ("yes", "off", "infinity", "nan_x", "true_x", "nullable")],
    *[(f"a={v}", HYDRA) for v in ("a.1", "x.1e5", "a/", "a..b", "-x", "/abs")],
    *[(f"a={v}", HYDRA) for v in ("1abc", "a b", "a,b", "a:b", "$x", "a\\b", "@x", "a=b")],
    *[(f"a={v}", FAST) for v in ("'quoted'", '"double"', "''", '""', "'1'", "'true'")],
    *[(f"a={v}", FAST) for v in ("'a b'", '"it\'s"', "'a,b'", "'[1]'", "'é ü'", "'a=b'")],
    *[(f"a={v}", HYDRA) for v in ("'${b}'", "${b}", "'a\\'b'", "'unclosed", "'a'b'")],
    *[(f"a={v}", HYDRA) for v in ("[1,2]", "{x:1}", "1,2", "range(1,3)", "choice(1,2)")],
    *[(f"a={v}", HYDRA) for v in ("", "int(1)", "str(1)", "glob(*)", "???", "'???'", '"???"')],
    # a final newline (``$`` matches before one): Hydra's lexer refuses it
    *[(f"a={v}\n", HYDRA) for v in ("5", "1e5", "true", "word", "'quoted'")],
    ("n.m=3", FAST),
    ("n.deep.x=2", FAST),
    ("n.s=0.1", FAST),
    ("b=7", FAST),  # another type than before: untyped inline values take it
    ("e=1", FAST),
    ("d=null", FAST),
    ("n=1", HYDRA),  # a mapping replaced by a scalar
    ("l=1", HYDRA),  # a list
    ("empty=1", HYDRA),
    ("z=1", HYDRA),  # no such key: Hydra's error
    ("n.zz=1", HYDRA),
    ("a.b=1", HYDRA),  # through a scalar
    ("+z=1", HYDRA),
    ("++a=1", HYDRA),
    ("~a", HYDRA),
    ("a@pkg=1", HYDRA),
    ("l.0=5", HYDRA),
    ("hydra.job.name=x", HYDRA),
    ("$a=1", HYDRA),
]


def hydra_compose(values: dict[str, Any], lines: list[str], root: Path) -> Composed:
    return compose_config(
        config_dir=None,
        inline=values,
        overrides=lines,
        root=root,
        problem=lambda message: Problem("ml.yaml", None, None, "params", message),
    )


def typed(value: Any) -> str:
    """``value`` as JSON that tells 1, 1.0 and true apart."""

    def tag(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): tag(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [tag(x) for x in v]
        return [type(v).__name__, repr(v)]

    return json.dumps(tag(value), sort_keys=True)


def test_the_table_covers_both_paths() -> None:
    assert {fast for _, fast in LINES} == {FAST, HYDRA}
    assert len({line for line, _ in LINES}) == len(LINES)


@pytest.mark.parametrize(("line", "fast"), LINES)
def test_a_plain_override_parses_as_hydra_parses_it(line: str, fast: bool) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType, ValueType

    plain = parse_plain(line) if compose_plain(VALUES, [line]) is not None else None
    assert (plain is not None) == fast
    if plain is None:
        return
    (hydra,) = OverridesParser.create().parse_overrides([line])
    assert (hydra.type, hydra.value_type, hydra.package) == (
        OverrideType.CHANGE,
        ValueType.ELEMENT,
        None,
    )
    assert hydra.key_or_group == plain.key_or_group
    assert typed(hydra.value()) == typed(plain.value())
    assert not hydra.is_sweep_override()


@pytest.mark.parametrize(("line", "fast"), [(line, fast) for line, fast in LINES if fast])
def test_a_plain_override_composes_as_hydra_composes_it(
    line: str, fast: bool, tmp_path: Path
) -> None:
    plain = compose_plain(VALUES, [line])
    assert plain is not None
    hydra = hydra_compose(VALUES, [line], tmp_path)
    mine = Composed(params=plain, sweeper=inline_sweeper(), output_dir=".")
    assert typed(mine.params) == typed(hydra.params)
    assert (mine.errors, mine.env, mine.env_read, mine.files) == (
        hydra.errors,
        hydra.env,
        hydra.env_read,
        hydra.files,
    )
    assert (mine.sweeper, mine.output_dir) == (hydra.sweeper, hydra.output_dir)


def test_several_overrides_compose_as_hydra_composes_them(tmp_path: Path) -> None:
    lines = ["a=2.5", "n.m='x'", "n.deep.x=null", "d=false", "b=path/to/f.csv"]
    plain = compose_plain(VALUES, lines)
    assert plain is not None
    assert typed(plain) == typed(hydra_compose(VALUES, lines, tmp_path).params)


def test_the_same_key_twice_is_left_to_hydra() -> None:
    assert compose_plain(VALUES, ["a=1", "a=2"]) is None


@pytest.mark.parametrize(
    "values",
    [
        {"a": 1, "b": "${a}"},  # interpolation
        {"a": 1, "b": "x-${a}"},
        {"a": 1, "b": "???"},  # mandatory: Hydra reports it as the key's error
        {"a": 1, "defaults": ["_self_"]},  # a defaults list
        {"a": 1, "hydra": {"job": {"name": "x"}}},  # the hydra node
        {"a": 1, "n": {1: "int key"}},  # OmegaConf keys Hydra turns into text
        {"a": 1, "n": {"a.b": 1}},  # a dotted key
        {"a": 1, "n": {"x y": 1}},
        {"a": 1, "t": (1, 2)},  # not YAML data
    ],
)
def test_values_hydra_reads_as_more_than_data_go_to_hydra(values: dict[str, Any]) -> None:
    assert compose_plain(values, ["a=2"]) is None


RECIPE = """\
schema_version: 1
name: demo
params: {s6: {n: 1}, other: {n: 1}}
overrides: [other.n=3]
steps:
  make:
    cmd: python -c "import mlbuild; print(mlbuild.params()['s6']['n'])" > n.txt
    params: [s6.n]
    outs: [n.txt]
"""

PROBE = """\
import sys
from mlbuild.cli.main import main
code = main(['run', '-q', {args}])
top = {{m.split('.')[0] for m in sys.modules}}
print(code, sorted({{'hydra', 'omegaconf', 'antlr4'}} & top))
"""


def test_run_with_a_plain_override_imports_no_hydra(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = ws.cli_python(PROBE.format(args="'s6.n=5'"))
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr
    assert ws.read("n.txt") == "5\n"


def test_an_override_that_is_not_plain_still_goes_to_hydra(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = ws.cli_python(PROBE.format(args="'s6.n=[1,2]'"))
    assert done.stdout.strip().splitlines()[-1] == "0 ['antlr4', 'hydra', 'omegaconf']", done.stderr
    assert ws.read("n.txt") == "[1, 2]\n"


def test_a_plain_override_of_a_missing_key_gets_hydras_message(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = ws.cli("run", "s6.m=5")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: cannot apply override 's6.m=5': there is no parameter 's6.m' (did you mean "
        "'s6.n'?); to add a new key use +s6.m=5\n",
    )


def test_a_plain_override_of_a_params_file_key_imports_no_hydra(ws: Workspace) -> None:
    ws.recipe(RECIPE.replace("params: {s6: {n: 1}, other: {n: 1}}", "params: params.yaml")).gen(
        {"params.yaml": "# tuned by hand\ns6:\n  n: 1  # the knob\nother: {n: 1}\n"}
    )
    done = ws.cli_python(PROBE.format(args="'s6.n=7'"))
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr
    assert ws.read("n.txt") == "7\n"
    assert ws.read("params.yaml") == "# tuned by hand\ns6:\n  n: 7  # the knob\nother: {n: 3}\n"


def test_flatten_of_the_table_values_is_what_selection_sees() -> None:
    # the composed values feed per-step selection: the plain path's output is plain data
    plain = compose_plain(VALUES, ["n.m=3"])
    assert plain is not None
    assert flatten(plain)["n.m"] == 3
