"""The validated recipe, cached by its structure: a param value edited skips pydantic's validation.

Validating ``ml.yaml`` means building the models' pydantic core schemas (~0.1 s; the models are
declared with ``defer_build``, so that cost is paid on the first validation, not on import). What
validation makes of a recipe depends on the recipe's data and mlbuild's code only, and not at all
on the *values* of inline parameters (``params: {…}``, ``params: {values: {…}}``): they are
``dict[str, Any]``, checked for their keys only. So the key of an entry is the recipe's data with
those values taken out (their keys kept), mlbuild's version and the recipe models' source files
(size and mtime, so an edited checkout never reads an entry of other rules). On a hit the models
are rebuilt from the entry (``model_construct``: no schema, no validation) and the current values
put back in; a step's use of them (``${params.…}`` in a command, a search's space, ``params_from``)
is checked by the graph compiler on every compile, cached entry or not.

An entry is a file read back from disk, so it is checked before it is used: it must name the
same data (its ``input``: the SHA-256 of the data without param values), decode into known
models with their required fields and plain JSON values, and read back into exactly the
recipe's data (every field the recipe sets holds the recipe's value; an entry holds only the
fields set, and the others get their defaults); anything else — truncated, corrupt, another
mlbuild's — is ignored and the recipe validated anew. What the check cannot catch is an entry
planted to be consistent with an invalid recipe: its validators never run (field-level rules
such as "no password in store.url"). Entries live in the workspace's own ``.mlbuild/``, which
only who can already edit the recipe can write, and are never synced through a remote cache; the
graph compiler's checks (path fences, inert params in commands) run on every compile regardless.
Entries are written atomically.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlbuild import atomic
from mlbuild.recipe._yaml import SourceMap

# bumped when what an entry holds or how it is read changes
_STRUCTURE_VERSION = 2  # 2: the input's digest, and a model's set fields only
_KEEP = 64  # entries kept; the oldest go first
_SOURCE_KEYS = ("config_dir", "files")  # as models._params_shape: a mapping of sources


class _Bad(Exception):
    """The entry (or the value to store) is not what this module writes."""


def parse_cached(text: str, file: str, cache_dir: Path, version: str) -> tuple[Any, SourceMap]:
    """:func:`~mlbuild.recipe.loader.parse_recipe`, answered from ``cache_dir`` when a recipe of
    the same structure was valid under mlbuild ``version``. Raises what ``parse_recipe``
    raises."""
    from mlbuild.recipe._yaml import load_yaml

    data, source = load_yaml(text, file)
    return parse_loaded(data, source, cache_dir, version), source


def parse_loaded(data: Any, source: SourceMap, cache_dir: Path, version: str) -> Any:
    """:func:`parse_cached` of a recipe already loaded: ``data`` and ``source`` as
    :func:`~mlbuild.recipe._yaml.load_yaml` returned them. Raises what ``validate_recipe``
    raises."""
    from mlbuild.recipe.loader import validate_recipe

    digest = input_digest(data) if isinstance(data, dict) else None  # once: the key and check
    key = structure_key(data, version, digest)
    entry = cache_dir / f"{key}.json" if key is not None else None
    if entry is not None:
        recipe = read_entry(entry, data, digest)
        if recipe is not None:
            return recipe
    recipe = validate_recipe(data, source)
    if entry is not None:
        write_entry(entry, recipe, data, digest)
    return recipe


def input_digest(data: dict[str, Any]) -> str:
    """The SHA-256 of recipe ``data`` without its param values: what an entry was made from."""
    stamp = json.dumps(_stripped(data))
    return hashlib.sha256(stamp.encode("utf-8", "surrogatepass")).hexdigest()


def structure_key(data: Any, version: str, digest: str | None = None) -> str | None:
    """The entry's name for recipe ``data`` under mlbuild ``version``, or ``None`` when it is
    not a mapping. ``digest``: its :func:`input_digest`, if already made."""
    if not isinstance(data, dict):
        return None
    if digest is None:
        digest = input_digest(data)
    stamp = json.dumps([version, _STRUCTURE_VERSION, _code_stamp(), digest])
    return hashlib.sha256(stamp.encode("utf-8", "surrogatepass")).hexdigest()


def read_entry(path: Path, data: dict[str, Any], digest: str | None = None) -> Any:
    """The recipe the entry at ``path`` holds for ``data``, or ``None`` unless it is sound."""
    try:
        if atomic.planted(path.parent):  # a symlink, maybe out of the workspace; a file
            return None
        if digest is None:
            digest = input_digest(data)
        entry = json.loads(atomic.read_own(path))  # nor a FIFO or symlink planted there
        if not isinstance(entry, dict) or entry.get("input") != digest:
            return None
        recipe = _decode(entry.get("recipe"))
        recipe = _with_values(recipe, data)
        if type(recipe).__name__ != "Recipe" or not _same(recipe, data):
            return None
        return recipe if _chosen_as_validation_would(recipe, data) else None
    except (OSError, ValueError, RecursionError, _Bad, TypeError, AttributeError, KeyError):
        return None


def _chosen_as_validation_would(recipe: Any, data: dict[str, Any]) -> bool:
    """``params``, the one union whose members read back alike (``{files: [...]}`` as sources
    or as inline values), holds the member its shape picks. (The other unions' members differ
    in their fields or their scalar types, which decoding and :func:`_same` check.)"""
    from mlbuild.recipe.models import ParamSources, _params_shape

    sources = _params_shape(data.get("params")) == "#sources"
    return isinstance(recipe.params, ParamSources) == sources


def write_entry(
    path: Path, recipe: BaseModel, data: dict[str, Any], digest: str | None = None
) -> None:
    """Keep ``recipe`` (validated from ``data``) for the next recipe of the same structure; not
    when it would not read back exactly (a value validation changed) or cannot be written."""
    try:
        if not _same(recipe, data) or atomic.planted(path.parent):
            return  # nothing written nor pruned through a planted folder
        if digest is None:
            digest = input_digest(data)
        entry = {"input": digest, "recipe": _encode(recipe)}
        atomic.write_json(path, entry, sync=False)  # derived: validated again if lost
        entries = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-_KEEP]:
            old.unlink(missing_ok=True)
    except (OSError, ValueError, _Bad):
        return  # a cache: a recipe it cannot keep is validated every time


# modules outside the recipe package whose rules validation applies (CacheSettings' remote)
_RULES_ELSEWHERE = ("remote_address.py",)


def _stamp_of(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)


def _code_stamp() -> list[list[Any]]:
    """The recipe package's source files and the modules of :data:`_RULES_ELSEWHERE` (name,
    size, mtime, inode, ctime): the rules an entry was made by. The ctime too, since an edit
    that keeps the size and sets the mtime back still changes it."""
    folder = Path(__file__).parent
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            stat = entry.stat()
            found.append([entry.name, *_stamp_of(stat)])
    for name in _RULES_ELSEWHERE:
        stat = (folder.parent / name).stat()
        found.append([f"../{name}", *_stamp_of(stat)])
    return found


def _param_values(data: dict[str, Any]) -> dict[str, Any] | None:
    """The mapping of inline param values in recipe ``data``, if it has one."""
    params = data.get("params")
    if not isinstance(params, dict):
        return None
    if not any(key in params for key in _SOURCE_KEYS):
        return params
    values = params.get("values")
    return values if isinstance(values, dict) else None


def _stripped(data: dict[str, Any]) -> Any:
    """``data`` encoded with each inline param value replaced by a marker (its key kept)."""
    values = _param_values(data)
    return _encode(data, values)


def _encode(value: Any, hole: dict[str, Any] | None = None) -> Any:
    """JSON that tells apart what validation tells apart: key types, tuples, models; the values
    of the mapping ``hole`` (found by identity) become ``{"p": 0}``."""
    if isinstance(value, BaseModel):
        # the fields set only: the others hold their defaults (an entry is written only when
        # the recipe reads back so, see write_entry), so an entry cannot give them another value
        given = value.model_fields_set
        fields = {name: _encode(v) for name, v in value.__dict__.items() if name in given}
        return {"m": type(value).__name__, "f": fields}
    if isinstance(value, dict):
        if value is hole:
            return {"d": [[_encode(k), {"p": 0}] for k in value]}
        return {"d": [[_encode(k), _encode(v, hole)] for k, v in value.items()]}
    if isinstance(value, list):
        return {"l": [_encode(v, hole) for v in value]}
    if isinstance(value, tuple):
        return {"t": [_encode(v, hole) for v in value]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise _Bad(f"not plain data: {type(value).__name__}")


def _models() -> dict[str, type[BaseModel]]:
    """Every model of the recipe, by name: the only classes an entry may name."""
    from mlbuild.recipe import executors, fields, model_tests, models, packaging, search

    found: dict[str, type[BaseModel]] = {}
    for module in (fields, executors, packaging, search, model_tests, models):
        for obj in vars(module).values():
            mine = isinstance(obj, type) and obj.__module__.startswith("mlbuild.recipe")
            if mine and issubclass(obj, BaseModel):
                found[obj.__name__] = obj
    return found


def _decode(value: Any, models: dict[str, type[BaseModel]] | None = None) -> Any:
    if models is None:
        models = _models()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if not isinstance(value, dict):
        raise _Bad("not an encoded value")
    if set(value) == {"m", "f"}:
        cls = models.get(value["m"]) if isinstance(value["m"], str) else None
        raw = value["f"]
        if cls is None or not isinstance(raw, dict):
            raise _Bad("not a model of the recipe")
        _, defaults, required = _shape(cls)
        if not raw.keys() <= defaults.keys():
            raise _Bad("a field the model does not have")
        if not required <= raw.keys():
            raise _Bad("a required field missing")
        fields = {
            name: _decode(raw[name], models) if name in raw else _fresh(default)
            for name, default in defaults.items()
        }
        # every field given: model_construct asks pydantic for no default (which inspects the
        # default factory's signature on every call)
        return cls.model_construct(_fields_set=set(raw), **fields)
    if set(value) == {"d"} and isinstance(value["d"], list):
        out = {}
        for pair in value["d"]:
            if not isinstance(pair, list) or len(pair) != 2:
                raise _Bad("not a key and a value")
            key = _decode(pair[0], models)
            if isinstance(key, dict | list):
                raise _Bad("an unhashable key")
            out[key] = _decode(pair[1], models)
        return out
    if set(value) == {"l"} and isinstance(value["l"], list):
        return [_decode(v, models) for v in value["l"]]
    if set(value) == {"t"} and isinstance(value["t"], list):
        return tuple(_decode(v, models) for v in value["t"])
    raise _Bad("not an encoded value")


def _with_values(recipe: Any, data: dict[str, Any]) -> Any:
    """``recipe`` with the inline param values of ``data`` (the entry's are another edit's)."""
    values = _param_values(data)
    if values is None or not isinstance(recipe, BaseModel):
        return recipe
    params = recipe.__dict__.get("params")
    if isinstance(params, dict):
        return recipe.model_copy(update={"params": dict(values)})
    if isinstance(params, BaseModel) and isinstance(params.__dict__.get("values"), dict):
        sources = params.model_copy(update={"values": dict(values)})
        return recipe.model_copy(update={"params": sources})
    return recipe


def _same(value: Any, data: Any) -> bool:
    """Whether ``value`` (validated, or rebuilt from an entry) reads back exactly as ``data``:
    the fields set are the data's keys with equal values, the others hold their defaults."""
    if isinstance(value, BaseModel):
        if not isinstance(data, dict):
            return False
        keys, defaults, _ = _shape(type(value))
        given = value.model_fields_set
        if not given <= keys.keys() or set(data) != {keys[name] for name in given}:
            return False
        for name, default in defaults.items():
            current = value.__dict__.get(name)
            if name in given:
                if not _same(current, data[keys[name]]):
                    return False
            elif not _same(current, default):
                return False
        return True
    if isinstance(value, dict):
        return (
            isinstance(data, dict)
            and list(value) == list(data)
            and all(type(k) is type(d) for k, d in zip(value, data, strict=True))
            and all(_same(value[k], data[k]) for k in value)
        )
    if isinstance(value, list | tuple):
        return (
            isinstance(data, type(value))
            and len(value) == len(data)
            and all(_same(v, d) for v, d in zip(value, data, strict=True))
        )
    return _same_scalar(value, data)


@functools.cache
def _shape(cls: type[BaseModel]) -> tuple[dict[str, str], dict[str, Any], frozenset[str]]:
    """Each field of model ``cls`` with its key in the recipe (``class_``: ``class``) and its
    default, and the required fields. Once per class: pydantic's ``get_default`` inspects the
    factory's signature on every call (2 s for 2,000 steps). One value per class is safe: every
    default factory of the recipe models (``list``, ``dict``) returns equal values on every
    call, and a model rebuilt from an entry gets its own copy (:func:`_fresh`)."""
    keys = {name: info.alias or name for name, info in cls.model_fields.items()}
    defaults = {
        name: info.get_default(call_default_factory=True) for name, info in cls.model_fields.items()
    }
    required = frozenset(name for name, info in cls.model_fields.items() if info.is_required())
    return keys, defaults, required


def _fresh(default: Any) -> Any:
    """A default of :func:`_shape` for one model: its own copy when it is mutable."""
    if default is None or isinstance(default, bool | int | float | str):
        return default
    return copy.deepcopy(default)


def _same_scalar(value: Any, data: Any) -> bool:
    if isinstance(value, bool) or isinstance(data, bool) or value is None or data is None:
        return type(value) is type(data) and value == data
    if isinstance(value, int | float) and isinstance(data, int | float):
        if isinstance(value, float) and math.isnan(value):
            return isinstance(data, float) and math.isnan(data)
        return value == data  # strict float fields take ints: 3 validates as 3.0
    return type(value) is type(data) and value == data
