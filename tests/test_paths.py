"""mlbuild.paths, in process, on real directories and symlinks: what a workspace lets the engine
read, write and remove (the CLI-level tests are tests/graph/test_paths.py and
tests/exec/test_ownership.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlbuild.paths import Fence, PathIndex, UnsafePathError, inner, is_within, normalise, overlaps


@pytest.fixture
def fence(tmp_path: Path) -> Fence:
    root = tmp_path / "repo"
    (root / ".git" / "hooks").mkdir(parents=True)
    (root / "conf").mkdir()
    (root / "ml.yaml").write_text("name: x\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim.txt").write_text("precious")
    return Fence(
        root, {"ml.yaml": "the recipe", "conf": "Hydra's config"}, tmp_path / "repo" / "cache"
    )


def refusal(fence: Fence, raw: str, *, writes: bool = True) -> str:
    with pytest.raises(UnsafePathError) as caught:
        fence.check(raw, writes=writes)
    return caught.value.message


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("a", "a"), ("a/./b/", "a/b"), ("a//b", "a/b"), ("a/x/../b", "a/b"), ("data/", "data")],
)
def test_normalise_gives_one_spelling_per_path(raw: str, normal: str) -> None:
    assert normalise(raw) == normal


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "'' is empty; name a file or directory inside the repository"),
        ("  ", "'  ' is empty; name a file or directory inside the repository"),
        (".", "'.' is the repository root itself; name a file or directory inside it"),
        ("./", "'./' is the repository root itself; name a file or directory inside it"),
        ("sub/..", "'sub/..' is the repository root itself; name a file or directory inside it"),
        ("..", "'..' is outside the repository; use a path inside it"),
        ("../x", "'../x' is outside the repository; use a path inside it"),
        ("a/../../x", "'a/../../x' is outside the repository; use a path inside it"),
        ("/etc/passwd", "'/etc/passwd' is outside the repository; use a path inside it"),
        ("a\0b", "'a\\0b' contains a NUL byte; no path can"),
    ],
)
def test_normalise_refuses_the_root_escapes_and_impossible_paths(raw: str, message: str) -> None:
    with pytest.raises(UnsafePathError) as caught:
        normalise(raw)
    assert caught.value.message == message


def test_an_over_long_path_is_refused_before_the_filesystem_sees_it() -> None:
    with pytest.raises(UnsafePathError) as caught:
        normalise("x" * 300)
    assert caught.value.reason == (
        "is too long (300 bytes, a name of 300); a path may have at most 4095 bytes and each "
        "name 255"
    )
    with pytest.raises(UnsafePathError):
        normalise("/".join(["d" * 200] * 30))


def test_is_within_and_overlaps_compare_whole_names() -> None:
    assert is_within("data/x.csv", "data")
    assert is_within("data", "data")
    assert is_within("data/x", "data/")
    assert not is_within("database", "data")
    assert not is_within("data", "data/x.csv")
    assert overlaps("data", "data/x.csv") and overlaps("data/x.csv", "data")
    assert not overlaps("model.pkl", "model.pkl.bak")


@pytest.mark.parametrize(
    ("raw", "writes", "message"),
    [
        (".git", False, "'.git' is .git (git's own files); mlbuild never reads or writes there"),
        (
            ".git/hooks/pre-commit",
            False,
            "'.git/hooks/pre-commit' is inside .git (git's own files); mlbuild never reads or "
            "writes there",
        ),
        (
            ".GIT/config",
            False,
            "'.GIT/config' is inside .git (git's own files); mlbuild never reads or writes there",
        ),
        (
            "sub/.git/config",
            False,
            "'sub/.git/config' is inside .git (git's own files); mlbuild never reads or writes "
            "there",
        ),
        (
            ".mlbuild/state.db",
            False,
            "'.mlbuild/state.db' is inside .mlbuild (mlbuild's state and cache); mlbuild never "
            "reads or writes there",
        ),
        (
            "ml.yaml",
            True,
            "'ml.yaml' is the recipe; steps may read it, but mlbuild never writes or removes it",
        ),
        (
            "conf/config.yaml",
            True,
            "'conf/config.yaml' is inside Hydra's config ('conf'); steps may read it, but "
            "mlbuild never writes or removes it",
        ),
        (
            "conf",
            True,
            "'conf' is Hydra's config; steps may read it, but mlbuild never writes or removes it",
        ),
        (
            "cache/objects/ab",
            False,
            "'cache/objects/ab' is inside mlbuild's cache ({root}/cache); use a path outside it "
            "(MLBUILD_CACHE_DIR names the cache)",
        ),
    ],
)
def test_the_fence_keeps_git_mlbuild_the_recipe_config_and_cache_apart(
    fence: Fence, raw: str, writes: bool, message: str
) -> None:
    assert refusal(fence, raw, writes=writes) == message.format(root=fence.root)


def test_deps_may_read_the_recipe_and_the_config_but_outs_may_not_write_them(fence: Fence) -> None:
    assert fence.check("ml.yaml", writes=False) == "ml.yaml"
    assert fence.check("conf/config.yaml", writes=False) == "conf/config.yaml"
    assert fence.check("./src//train.py", writes=True) == "src/train.py"


def test_a_path_through_a_symlinked_directory_out_of_the_repository_is_refused(
    fence: Fence,
) -> None:
    outside = fence.root.parent / "outside"
    (fence.root / "data").symlink_to(outside)
    assert refusal(fence, "data/victim.txt") == (
        f"'data/victim.txt' resolves through the symlink 'data' to '{outside}/victim.txt', which "
        f"is outside the repository ({fence.root}); use a path inside it, or replace the "
        "symlink with a real directory"
    )
    assert refusal(fence, "data/victim.txt", writes=False).startswith("'data/victim.txt' resolves")


def test_a_symlink_into_git_or_onto_the_root_is_refused(fence: Fence) -> None:
    (fence.root / "hooks").symlink_to(".git/hooks")
    (fence.root / "here").symlink_to(".")
    assert refusal(fence, "hooks/post-checkout", writes=False) == (
        "'hooks/post-checkout' resolves through the symlink 'hooks' to '.git/hooks/post-checkout', "
        "which is inside .git (git's own files); mlbuild never reads or writes there, or replace "
        "the symlink with a real directory"
    )
    assert refusal(fence, "here") == (
        "'here' resolves through the symlink 'here' to '.', which is the repository root "
        "itself; name a file or directory inside it, or replace the symlink with a real directory"
    )
    assert fence.check("here/model.pkl", writes=True) == "here/model.pkl"  # lands in the root


def test_a_symlink_inside_the_repository_is_followed_and_checked_where_it_lands(
    fence: Fence,
) -> None:
    (fence.root / "real").mkdir()
    (fence.root / "alias").symlink_to("real")
    (fence.root / "recipe-link").symlink_to("ml.yaml")
    assert fence.check("alias/model.pkl", writes=True) == "alias/model.pkl"
    assert refusal(fence, "recipe-link").startswith(
        "'recipe-link' resolves through the symlink 'recipe-link' to 'ml.yaml', which is the recipe"
    )


def test_a_symlink_loop_is_refused_not_followed_forever(fence: Fence) -> None:
    (fence.root / "a").symlink_to("b")
    (fence.root / "b").symlink_to("a")
    assert refusal(fence, "a/x") == "'a/x' goes through a symlink loop; remove the loop"


def test_target_rechecks_what_changed_since_validate(fence: Fence) -> None:
    (fence.root / "out").mkdir()
    assert fence.target("out/model.pkl") == fence.root / "out/model.pkl"
    (fence.root / "out").rmdir()
    (fence.root / "out").symlink_to(fence.root.parent / "outside")
    with pytest.raises(UnsafePathError):
        fence.target("out/model.pkl")


def test_check_output_allows_outside_the_workspace_but_not_the_cache_or_git(
    fence: Fence, tmp_path: Path
) -> None:
    fence.check_output(tmp_path / "elsewhere" / "model.pkl")
    fence.check_output(fence.root / "model.pkl")
    with pytest.raises(UnsafePathError):
        fence.check_output(fence.root / ".git" / "model.pkl")
    with pytest.raises(UnsafePathError):
        fence.check_output(fence.root / "cache" / "x")
    with pytest.raises(UnsafePathError):
        fence.check_output(fence.root / "ml.yaml")
    os.symlink(fence.root / ".git", tmp_path / "sneaky")
    with pytest.raises(UnsafePathError):
        fence.check_output(tmp_path / "sneaky" / "hooks")


@pytest.mark.parametrize("raw", ["../x", "/etc/cron.d/x", "a/../../x", ".git/hooks/x", ""])
def test_entries_of_a_directory_object_stay_inside_it(raw: str) -> None:
    with pytest.raises(UnsafePathError):
        inner(raw)
    assert inner("sub/./file.txt") == "sub/file.txt"


def test_a_path_index_answers_as_the_pairwise_checks_do() -> None:
    import random

    rng = random.Random(7)
    names = ["a", "a-b", "a.b", "b", "ab", "a b", "ü"]
    paths = {"/".join(rng.choices(names, k=rng.randint(1, 4))) for _ in range(300)}
    indexed = sorted(paths)[::2]
    rng.shuffle(indexed)
    half = len(indexed) // 2
    index = PathIndex((p, i) for i, p in enumerate(indexed[:half]))  # sorted once, then …
    for i, p in enumerate(indexed[half:], start=half):
        index.add(p, i)  # … inserted one by one
    for query in sorted(paths):
        assert index.overlaps_any(query) == any(overlaps(query, p) for p in indexed), query
        assert index.holding(query) == [
            (p, i) for i, p in enumerate(indexed) if is_within(query, p)
        ], query
        assert index.inside(query) == [
            (p, i) for i, p in enumerate(indexed) if is_within(p, query) and p != query
        ], query
        assert index.overlapping(query) == [
            (p, i) for i, p in enumerate(indexed) if overlaps(query, p)
        ], query


def test_a_path_index_keeps_every_value_of_a_path_added_twice() -> None:

    index = PathIndex([("out/model", "train"), ("out", "prep"), ("out/model", "tune")])
    assert index.holding("out/model/weights.bin") == [
        ("out/model", "train"),
        ("out", "prep"),
        ("out/model", "tune"),
    ]
    assert index.inside("out") == [("out/model", "train"), ("out/model", "tune")]
    assert index.overlapping("elsewhere") == []


def _answer(fence: Fence, raw: str, writes: bool) -> str:
    try:
        return fence.check(raw, writes=writes)
    except UnsafePathError as exc:
        return f"refused: {exc.message}"


def test_a_fence_checking_many_paths_at_once_answers_as_one_checking_each(fence: Fence) -> None:
    # at_once() resolves each folder once for a sweep of checks; it must answer exactly what
    # a check of each path alone answers, on every kind of link
    root, outside = fence.root, fence.root.parent / "outside"
    (root / "real" / "deep").mkdir(parents=True)
    (root / "real" / "deep" / "f.txt").write_text("f")
    (root / "alias").symlink_to("real")
    (root / "real" / "up").symlink_to("..")
    (root / "out").symlink_to(outside)
    (root / "real" / "out2").symlink_to(outside / "victim.txt")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "dangling").symlink_to("nowhere/at/all")
    (root / "gitlink").symlink_to(".git")
    (root / "conflink").symlink_to("conf")
    (root / "cache").mkdir()
    (root / "cachelink").symlink_to("cache")
    (root / "caf\udce9" / "d").mkdir(parents=True)  # names that are not UTF-8
    (root / "caf\udce9" / "\udcff").symlink_to(outside)
    paths = [
        "caf\udce9/d/x.txt",
        "caf\udce9/\udcff/victim.txt",
        "caf\udce9/../out/victim.txt",
        "real/deep/../../conflink/x",
        "alias/../ml.yaml",
        "real/deep/f.txt",
        "alias/deep/f.txt",
        "alias/up/alias/deep/new.txt",
        "real/up",
        "out/victim.txt",
        "real/out2",
        "alias/out2",
        "loop1/x",
        "loop2",
        "dangling",
        "dangling/x",
        "missing/a/b",
        "gitlink/config",
        "conflink/config.yaml",
        "cachelink/objects/x",
        "ml.yaml",
        "a/../ml.yaml",
    ]
    many = fence.at_once()
    for writes in (False, True):
        alone = {p: _answer(fence, p, writes) for p in paths}
        assert {p: _answer(many, p, writes) for p in reversed(paths)} == alone
    assert alone["alias/deep/f.txt"] == "alias/deep/f.txt"
    assert alone["out/victim.txt"].startswith("refused: 'out/victim.txt' resolves through")
    assert alone["loop1/x"] == "refused: 'loop1/x' goes through a symlink loop; remove the loop"
    assert alone["caf\udce9/d/x.txt"] == "caf\udce9/d/x.txt"
    assert alone["caf\udce9/\udcff/victim.txt"].startswith("refused:")


def test_a_sweep_asks_again_whether_a_path_it_passed_for_reading_may_be_written(
    fence: Fence,
) -> None:
    # a sweep remembers the paths it passed; a dep that is also written (the recipe, a path
    # through a symlink into Hydra's config) must still be refused as an out
    (fence.root / "conflink").symlink_to("conf")
    many = fence.at_once()
    for raw in ("ml.yaml", "sub/../ml.yaml", "conf/x.yaml", "conflink/x.yaml"):
        assert many.check(raw, writes=False) == normalise(raw)
        with pytest.raises(UnsafePathError, match="mlbuild never writes or removes it"):
            many.check(raw, writes=True)
        assert many.check(raw, writes=False) == normalise(raw)


def test_a_sweep_sees_a_path_made_a_symlink_before_its_folder_was_first_asked(
    fence: Fence,
) -> None:
    # the sweep resolves each folder when first asked, not when the fence was made
    many = fence.at_once()
    (fence.root / "a").mkdir()
    assert many.check("a/x.txt", writes=True) == "a/x.txt"
    (fence.root / "b").symlink_to(fence.root.parent / "outside")
    with pytest.raises(UnsafePathError, match="resolves through the symlink 'b'"):
        many.check("b/victim.txt", writes=False)
    (fence.root / "a" / "y.txt").symlink_to(fence.root.parent / "outside" / "victim.txt")
    with pytest.raises(UnsafePathError, match=r"resolves through the symlink 'a/y\.txt'"):
        many.check("a/y.txt", writes=True)


def test_a_fence_for_one_sweep_of_checks_keeps_nothing_for_the_next(fence: Fence) -> None:
    # what path_problems and the compiler use, each sweep anew: a folder replaced by a
    # symlink out between two sweeps is seen by the second
    (fence.root / "out").mkdir()
    assert fence.at_once().check("out/model.pkl", writes=True) == "out/model.pkl"
    (fence.root / "out").rmdir()
    (fence.root / "out").symlink_to(fence.root.parent / "outside")
    with pytest.raises(UnsafePathError):
        fence.at_once().check("out/model.pkl", writes=True)
