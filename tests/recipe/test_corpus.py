"""A corpus of good and bad recipes: pydantic and the committed JSON Schema must agree on each,
and every bad one gets the message its ``# expect:`` header pins."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlbuild.errors import RecipeError
from mlbuild.recipe import parse_recipe
from tests.conftest import REPO

CORPUS = Path(__file__).parent / "corpus"
SCHEMA = json.loads((REPO / "schema" / "ml.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _cases(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*.yaml"))


@pytest.mark.parametrize("path", _cases("good"), ids=lambda p: p.stem)
def test_good_recipes_pass_both_validators(path: Path) -> None:
    text = path.read_text()
    parse_recipe(text)
    assert list(VALIDATOR.iter_errors(yaml.safe_load(text))) == []


@pytest.mark.parametrize("path", _cases("bad"), ids=lambda p: p.stem)
def test_bad_recipes_fail_both_validators_with_the_pinned_message(path: Path) -> None:
    text = path.read_text()
    expected = text.splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(RecipeError) as caught:
        parse_recipe(text)
    assert expected in caught.value.message
    assert list(VALIDATOR.iter_errors(yaml.safe_load(text))) != [], "the schema accepts it"


def test_the_corpus_is_not_trivially_small() -> None:
    assert len(_cases("good")) >= 4
    assert len(_cases("bad")) >= 20
