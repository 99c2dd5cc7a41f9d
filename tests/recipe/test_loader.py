"""The recipe loader: every problem at once, each at ml.yaml:LINE:COL with the key path."""

from __future__ import annotations

import re

import pytest

from mlbuild.errors import RecipeError
from mlbuild.recipe import parse_recipe
from tests.recipe.test_corpus import CORPUS


def problems(text: str) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        parse_recipe(text)
    return [p.render().splitlines()[0] for p in caught.value.problems]


GOOD = """\
schema_version: 1
name: demo
steps:
  train:
    cmd: python train.py
    deps: [data.csv]
    outs: [model.pkl, {path: ckpt/, persist: true}]
    params: [train.*]
    timeout: 30m
"""


def test_a_valid_recipe_loads_into_typed_models() -> None:
    recipe, _ = parse_recipe(GOOD)
    step = recipe.steps["train"]
    assert step.cmd == "python train.py"
    assert step.outs[1].persist is True  # type: ignore[union-attr]
    assert step.timeout == "30m"


def test_a_misspelt_key_names_its_line_column_and_the_nearest_valid_key() -> None:
    text = GOOD.replace("    deps:", "    dpes:")
    assert problems(text) == [
        "ml.yaml:6:5: steps.train.dpes: unknown key 'dpes' (did you mean 'deps'?); expected one "
        "of: always_run, cmd, deps, description, env, executor, metrics, needs, outs, params, "
        "params_from, secrets, timeout"
    ]


def test_the_error_shows_the_offending_line_with_a_caret() -> None:
    with pytest.raises(RecipeError) as caught:
        parse_recipe(GOOD.replace("timeout: 30m", "timeout: soon"))
    rendered = caught.value.problems[0].render().splitlines()
    assert rendered[1] == "    9 |     timeout: soon"
    assert rendered[2] == "      |              ^"


def test_a_megabyte_line_is_shown_as_an_excerpt_around_the_caret() -> None:
    # a minified recipe is one line: the error shows the part around the column, not all of it
    before = ", ".join(f"s{i}: {{cmd: echo {i}}}" for i in range(20_000))
    after = ", ".join(f"t{i}: {{cmd: echo {i}}}" for i in range(20_000))
    steps = f"{before}, bad: {{cmd: echo, oops: 1}}, {after}"
    text = f"{{schema_version: 1, name: demo, steps: {{{steps}}}}}"
    with pytest.raises(RecipeError) as caught:
        parse_recipe(text)
    head, shown, caret = caught.value.problems[0].render().splitlines()
    assert head.startswith("ml.yaml:1:")
    assert shown.startswith("    1 | …") and shown.endswith("…")
    assert len(shown) < 120
    at = caret.index("^")
    assert shown[at:].startswith("oops: 1")


def test_a_line_of_up_to_100_characters_is_shown_whole() -> None:
    text = GOOD.replace("timeout: 30m", "timeout: " + "x" * 85)
    with pytest.raises(RecipeError) as caught:
        parse_recipe(text)
    _, shown, caret = caught.value.problems[0].render().splitlines()
    assert shown == "    9 |     timeout: " + "x" * 85
    assert caret.index("^") == shown.index("x")


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = """\
schema_version: 2
name: Demo Project
steps:
  train:
    cmd: 3
    outs:
      - 5
      - {pth: x}
    always_run: maybe
"""
    assert problems(text) == [
        "ml.yaml:1:17: schema_version: expected 1, got 2",
        "ml.yaml:2:7: name: value 'Demo Project' does not match the pattern ^[a-z0-9][a-z0-9._-]*$",
        "ml.yaml:5:10: steps.train.cmd: expected a shell command string or a list of arguments "
        "(argv), got 3",
        "ml.yaml:7:9: steps.train.outs[0]: expected a path string or a mapping with 'path', "
        "'cache', 'persist', 'dvc', got 5",
        "ml.yaml:8:9: steps.train.outs[1]: missing required key 'path'",
        "ml.yaml:8:10: steps.train.outs[1].pth: unknown key 'pth' (did you mean 'path'?); "
        "expected one of: cache, dvc, path, persist",
        "ml.yaml:9:17: steps.train.always_run: expected true or false, got 'maybe'",
    ]


def test_duplicate_keys_are_errors_pointing_at_the_second_one() -> None:
    text = GOOD.replace("    deps: [data.csv]\n", "    deps: [data.csv]\n    deps: [other.csv]\n")
    assert problems(text) == [
        "ml.yaml:7:5: steps.train.deps: duplicate key 'deps' (first defined at line 6); a key "
        "may appear once per mapping"
    ]


def test_a_yaml_syntax_error_is_located() -> None:
    assert problems("schema_version: 1\nname: [unclosed\n") == [
        "ml.yaml:3:1: YAML syntax error: did not find expected ',' or ']' "
        "(while parsing a flow sequence)"
    ]


def test_missing_top_level_keys_are_named() -> None:
    assert problems("name: demo\n") == [
        "ml.yaml:1:1: missing required key 'schema_version'",
        "ml.yaml:1:1: missing required key 'steps'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "ml.yaml: expected a mapping with schema_version, name and steps, got an empty file"),
        (
            "- a\n",
            "ml.yaml:1:1: expected a mapping with schema_version, name and steps, got a list",
        ),
    ],
)
def test_a_recipe_that_is_not_a_mapping(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_a_bad_step_name_points_at_the_key() -> None:
    text = GOOD.replace("  train:", '  "my step":')
    assert problems(text) == [
        "ml.yaml:4:3: steps.my step: key 'my step' does not match the pattern "
        "^[A-Za-z_][A-Za-z0-9_-]*$"
    ]


def test_params_with_config_dir_are_a_hydra_source_and_typos_in_it_are_caught() -> None:
    text = GOOD + "params: {config_dir: conf, config_nmae: main}\n"
    assert problems(text) == [
        "ml.yaml:10:28: params.config_nmae: unknown key 'config_nmae' (did you mean "
        "'config_name'?); expected one of: config_dir, config_name, files, values"
    ]


def test_environment_takes_one_lock_file() -> None:
    text = GOOD + "environment: {pipfile: Pipfile, requirements: req.lock}\n"
    assert problems(text) == [
        "ml.yaml:10:14: environment: give either 'pipfile' or 'requirements', not both"
    ]


# a duration the pattern takes (a digit 1-9 in it) that is 0.0 seconds as a float
ZERO = "0." + "0" * 400 + "1s"


@pytest.mark.parametrize(
    ("case", "keys"),
    [
        ("full.yaml", ["steps.train.timeout"]),
        ("search.yaml", ["search.hpo.timeout", "search.sweeper.timeout"]),
        ("tests_every_kind.yaml", ["tests.team.timeout"]),
        ("model_check.yaml", ["model.check.timeout"]),
    ],
)
def test_every_timeout_refuses_a_duration_of_zero_seconds(case: str, keys: list[str]) -> None:
    text = (CORPUS / "good" / case).read_text()
    text = re.sub(r"timeout: [0-9]+[smh]", f"timeout: {ZERO}", text)
    assert [p.split(": ", 1)[1] for p in problems(text)] == [
        f"{key}: must be greater than 0" for key in keys
    ]
