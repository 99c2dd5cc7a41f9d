"""A corpus of good and bad recipes: mlbuild and the committed JSON Schema must agree on each,
and every bad one gets the message its ``# expect:`` header pins.

The schema is checked as an editor applies it: on the document read by a YAML 1.2 parser
(ruamel.yaml; yaml-language-server reads YAML 1.2 too), where ``yes``/``no``/``on``/``off`` are
strings. mlbuild reads the recipe as YAML 1.2 as well, so both see the same values.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from mlbuild.errors import RecipeError
from mlbuild.recipe import parse_recipe
from tests.conftest import REPO

CORPUS = Path(__file__).parent / "corpus"
SCHEMA = json.loads((REPO / "schema" / "ml.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def as_editors_read_it(text: str) -> object:
    return YAML(typ="safe", pure=True).load(text)


def _cases(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*.yaml"))


@pytest.mark.parametrize("path", _cases("good"), ids=lambda p: p.stem)
def test_good_recipes_pass_both_validators(path: Path) -> None:
    text = path.read_text()
    parse_recipe(text)
    assert list(VALIDATOR.iter_errors(as_editors_read_it(text))) == []


@pytest.mark.parametrize("path", _cases("bad"), ids=lambda p: p.stem)
def test_bad_recipes_fail_both_validators_with_the_pinned_message(path: Path) -> None:
    text = path.read_text()
    expected = text.splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(RecipeError) as caught:
        parse_recipe(text)
    assert expected in caught.value.message
    assert list(VALIDATOR.iter_errors(as_editors_read_it(text))) != [], "the schema accepts it"


def test_mlbuild_reads_scalars_as_yaml_1_2_does() -> None:
    text = (CORPUS / "good" / "yaml12_scalars.yaml").read_text()
    recipe, _ = parse_recipe(text)
    assert recipe.params == {"answer": "yes", "switch": "off", "lr": 0.001, "clock": "12:30"}
    assert recipe.steps["train"].timeout == 1000.0
    assert recipe.params == as_editors_read_it(text)["params"]  # type: ignore[index]


def test_the_corpus_is_not_trivially_small() -> None:
    assert len(_cases("good")) >= 4
    assert len(_cases("bad")) >= 20
