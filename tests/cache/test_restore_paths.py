"""A restore never writes outside where it was asked to: the destination is re-checked against the
workspace's fence at the last moment, and a directory object's entries stay inside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlbuild.cache import Cache, ManifestEntry
from mlbuild.cache.hashing import manifest_digest
from mlbuild.errors import CacheError
from mlbuild.paths import Fence, UnsafePathError
from tests.conftest import write_tree


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    (tmp_path / "repo").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim.txt").write_text("precious")
    return Cache.open(tmp_path / "repo", tmp_path / "repo" / ".mlbuild")


def stored_file(cache: Cache, content: bytes) -> str:
    write_tree(cache.hasher.root, {"scratch.bin": content})
    digest = cache.hasher.digest("scratch.bin")
    assert digest is not None
    cache.objects.put(cache.hasher.root / "scratch.bin", digest)
    (cache.hasher.root / "scratch.bin").unlink()
    return digest.value


def hostile_directory(cache: Cache, relpath: str) -> str:
    """A well-formed directory object (its digest matches its manifest) listing ``relpath``."""
    file_digest = stored_file(cache, b"planted")
    entries = (ManifestEntry(relpath, file_digest, 7, False),)
    digest = manifest_digest(entries)
    target = cache.objects.path_of(digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps([[relpath, file_digest, 7, False]]))
    return digest


@pytest.mark.parametrize(
    "relpath", ["../../outside/victim.txt", "/tmp/mlbuild-planted.txt", ".git/hooks/pre-commit"]
)
def test_a_directory_object_listing_a_file_outside_itself_is_refused(
    cache: Cache, tmp_path: Path, relpath: str
) -> None:
    digest = hostile_directory(cache, relpath)
    write_tree(tmp_path / "repo", {"out": {"data": {"old.csv": "the previous output"}}})
    with pytest.raises(CacheError) as caught:
        cache.objects.restore(digest, tmp_path / "repo" / "out" / "data")
    assert caught.value.message == (
        f"cache object {digest} lists the file '{relpath}', outside its directory or in .git or "
        f".mlbuild, so mlbuild did not write it; delete {cache.objects.path_of(digest)} and run "
        "again"
    )
    assert (tmp_path / "outside" / "victim.txt").read_text() == "precious"
    assert not Path("/tmp/mlbuild-planted.txt").exists()
    assert not (tmp_path / "repo" / "out" / ".git").exists()
    assert (tmp_path / "repo/out/data/old.csv").read_text() == "the previous output"  # untouched


def test_the_destination_is_checked_against_the_fence_before_anything_is_removed(
    cache: Cache, tmp_path: Path
) -> None:
    digest = stored_file(cache, b"model bytes")
    root = tmp_path / "repo"
    fence = Fence(root, {"ml.yaml": "the recipe"})
    (root / "out").symlink_to(tmp_path / "outside")  # was a directory when the plan was made
    with pytest.raises(UnsafePathError):
        cache.objects.restore(digest, root / "out" / "victim.txt", fence=fence)
    assert (tmp_path / "outside" / "victim.txt").read_text() == "precious"
    (root / "ml.yaml").write_text("name: x\n")
    with pytest.raises(UnsafePathError):
        cache.objects.restore(digest, root / "ml.yaml", fence=fence)
    assert (root / "ml.yaml").read_text() == "name: x\n"
    cache.objects.restore(digest, root / "model.bin", fence=fence)
    assert (root / "model.bin").read_bytes() == b"model bytes"
