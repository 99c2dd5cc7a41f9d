"""Action entries and manifests are checked when read: a damaged or planted one is a miss.

Nothing written where an entry says, unless the entry is well-formed, names exactly the step's
outputs, and its digests and paths could never leave the workspace or the cache.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from blake3 import blake3

from mlbuild.cache.hashing import ManifestEntry, manifest_digest
from tests.cache.damage import cache_root, entry_of, object_path, quarantined
from tests.conftest import Workspace, statuses

RECIPE = """\
schema_version: 1
name: entries
steps:
  make:
    cmd: python make.py
    deps: [make.py]
    outs: [out.txt]
"""
MAKE = 'open("out.txt", "w").write("good bytes")\n'


@pytest.fixture
def built(ws: Workspace) -> Workspace:
    ws.recipe(RECIPE).gen({"make.py": MAKE})
    assert statuses(ws.run_json()) == {"make": "ran"}
    return ws


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def change(entry: dict[str, Any]) -> Any:
        entry[field] = value
        return entry

    return change


def _out(**changes: Any) -> Callable[[dict[str, Any]], Any]:
    def change(entry: dict[str, Any]) -> Any:
        entry["outs"]["out.txt"].update(changes)
        return entry

    return change


def _rename_out(path: str) -> Callable[[dict[str, Any]], Any]:
    def change(entry: dict[str, Any]) -> Any:
        entry["outs"] = {path: entry["outs"]["out.txt"]}
        return entry

    return change


def _add_out(path: str) -> Callable[[dict[str, Any]], Any]:
    def change(entry: dict[str, Any]) -> Any:
        entry["outs"][path] = entry["outs"]["out.txt"]
        return entry

    return change


HOSTILE = {
    "not JSON": lambda entry: "{truncated",
    "not UTF-8": lambda entry: b'{"step": "\xff\xfe"}',
    "empty": lambda entry: "",
    "a list": lambda entry: [entry],
    "a missing key": lambda entry: {k: v for k, v in entry.items() if k != "metrics"},
    "an unknown key": _set("shell", "rm -rf /"),
    "outs as a list": _set("outs", []),
    "a size as text": _out(size="10"),
    "a negative size": _out(size=-1),
    "cached as text": _out(cached="yes"),
    "a duration that is not a number": _set("duration", "NaN"),
    "a duration of 400 digits": _set("duration", int("9" * 400)),  # float() of it overflows
    "a creation time of 400 digits": _set("created", -int("9" * 400)),
    "a duration that is a boolean": _set("duration", True),
    "a size that is a boolean": _out(size=True),
    "cached as a number": _out(cached=1),
    "a step name that is a number": _set("step", 7),
    "data that is a list": _set("data", []),
    "a digest that climbs out": _out(digest="../../../../escape"),
    "a digest with a bad suffix": _out(digest="a" * 64 + ".exe"),
    "an upper-case digest": _out(digest="A" * 64),
    "an out path that climbs out": _rename_out("../escape.txt"),
    "an absolute out path": _rename_out("/tmp/mlbuild-escape.txt"),
    "an out path with a dot": _rename_out("./out.txt"),
    "an out the step does not declare": _add_out("planted.txt"),
    "an out missing": _rename_out("other.txt"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_bad_action_entry_is_a_miss_and_goes_to_quarantine(built: Workspace, name: str) -> None:
    cache = cache_root(built)
    path, entry = entry_of(cache, "make")
    changed = HOSTILE[name](entry)
    if isinstance(changed, bytes):
        path.write_bytes(changed)
    else:
        path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    (built.root / "out.txt").unlink()
    result = built.run_json()
    assert statuses(result) == {"make": "ran"}
    assert built.read("out.txt") == "good bytes"
    assert not (built.root.parent / "escape.txt").exists()
    assert not (built.root / "planted.txt").exists()
    assert [n.split(".")[0] for n in quarantined(cache)] == [f"action-{path.stem}"]
    assert entry_of(cache, "make")[1]["outs"]["out.txt"]["size"] == 10  # rewritten whole
    assert statuses(built.run_json()) == {"make": "cached"}


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo", "huge"])
def test_an_entry_that_is_not_a_plain_file_is_a_miss(built: Workspace, kind: str) -> None:
    cache = cache_root(built)
    path, entry = entry_of(cache, "make")
    path.unlink()
    if kind == "symlink":  # even to a perfectly good entry
        good = cache / "elsewhere.json"
        good.write_text(json.dumps(entry))
        path.symlink_to(good)
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # reading it would hang the run
    else:
        with open(path, "wb") as handle:
            handle.truncate(1 << 30)  # sparse: a GiB of nothing
    (built.root / "out.txt").unlink()
    assert statuses(built.run_json()) == {"make": "ran"}
    assert built.read("out.txt") == "good bytes"
    assert len(quarantined(cache)) == 1


def test_a_planted_manifest_that_climbs_out_is_refused_even_when_its_hash_is_right(
    ws: Workspace,
) -> None:
    """A manifest self-consistent with its name — as anyone who can write the cache can make —
    naming ``../escape.txt``: its paths are checked, not only its hash."""
    make = 'import os\nos.makedirs("out", exist_ok=True)\nopen("out/f.txt", "w").write("ok")\n'
    ws.recipe(RECIPE.replace("out.txt", "out/")).gen({"make.py": make})
    assert statuses(ws.run_json()) == {"make": "ran"}
    cache = cache_root(ws)
    path, entry = entry_of(cache, "make")
    payload = b"planted"
    payload_digest = str(blake3(payload).hexdigest())
    object_path(cache, payload_digest).parent.mkdir(parents=True, exist_ok=True)
    object_path(cache, payload_digest).write_bytes(payload)
    for hostile in ("../escape.txt", "/tmp/mlbuild-escape.txt", "a/../../escape.txt"):
        files = (ManifestEntry(hostile, payload_digest, len(payload), False),)
        digest = manifest_digest(files)
        object_path(cache, digest).parent.mkdir(parents=True, exist_ok=True)
        object_path(cache, digest).write_text(json.dumps([[hostile, payload_digest, 7, False]]))
        entry["outs"]["out"] = {"digest": digest, "size": 7, "cached": True}
        path.write_text(json.dumps(entry))
        (ws.root / "out" / "f.txt").unlink()
        done = ws.cli("run")
        assert done.returncode == 0, done.stderr
        assert "make: running (cached output out was corrupt (quarantined))" in done.stdout
        assert not (ws.root.parent / "escape.txt").exists()
        assert not os.path.exists("/tmp/mlbuild-escape.txt")
        assert ws.read("out/f.txt") == "ok"
        path, entry = entry_of(cache, "make")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([["f.txt", "b" * 64, 1, False], ["f.txt", "b" * 64, 1, False]], "lists 'f.txt' twice"),
        ([["d", "b" * 64, 1, False], ["d/f.txt", "b" * 64, 1, False]], "as a file and as a"),
        ([["f.txt", "b" * 64, "1", False]], "size '1' is not a byte count"),
        ([["f.txt", "b" * 64, 1, "yes"]], "executable flag 'yes' is not true or false"),
        ([["f.txt", "../" + "b" * 61, 1, False]], "malformed digest"),
        ({"f.txt": "b" * 64}, "is not a list of files"),
    ],
)
def test_a_malformed_manifest_is_rejected_with_what_is_wrong(body: Any, problem: str) -> None:
    from mlbuild.cache.manifest import decode

    assert problem in str(decode("c" * 64 + ".dir", json.dumps(body).encode()))
