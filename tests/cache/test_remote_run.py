"""The remote cache end to end: real clones run the CLI against a directory, a real S3 API
(moto) and a DVC remote. Clone A builds and uploads; clone B, with a cache of its own, restores
every step without running it — and never restores, or keeps, a byte the remote got wrong.

Each step appends to a marker file outside the workspace when its command runs, so a test can
tell "restored" from "ran again" by what happened, not by what mlbuild says.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cache.remote_sides import KINDS, RemoteSide, digest_of, make_side, object_key
from tests.conftest import Workspace, statuses

pytestmark = pytest.mark.slow

RECIPE = """\
schema_version: 1
name: demo
{section}
steps:
  make:
    cmd: echo ran >> "$MARKERS/make"; mkdir -p out/sub; echo hello >out/sub/x.txt; echo one >one.txt
    outs: [out, one.txt]
  copy:
    cmd: echo ran >> "$MARKERS/copy"; cp one.txt two.txt
    deps: [one.txt]
    outs: [two.txt]
"""
ONE = b"one\n"
# the cases about the remote's bytes run on both backends; dvc:// opens a directory backend, so
# the cases about how a remote is found and used run on it too
BACKENDS = pytest.mark.parametrize("side", ["directory", "s3"], indirect=True)


class Clone:
    """A clone of the recipe with a local cache of its own, pointed at the remote ``side``."""

    def __init__(self, root: Path, side: RemoteSide, tmp_path: Path, name: str) -> None:
        root.mkdir()
        self.ws = Workspace(root).recipe(RECIPE.format(section=side.section))
        self.side = side
        self.cache = tmp_path / f"cache-{name}"
        self.markers = tmp_path / "markers"
        self.markers.mkdir(exist_ok=True)
        side.prepare(self.ws)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {
            **self.side.env,
            "MLBUILD_CACHE_DIR": str(self.cache),
            "MARKERS": str(self.markers),
            **(extra or {}),
        }

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.ws.cli(*args, env=self.env(env))

    def run(self, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
        """``run --json``: the steps' statuses, and what it said on stderr."""
        done = self.cli("run", "--json", *args, env=env)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        return statuses(result), done.stderr

    def ran(self, step: str) -> int:
        """How many times ``step``'s command has run, in any clone."""
        marker = self.markers / step
        return len(marker.read_text().splitlines()) if marker.exists() else 0

    def local_objects(self) -> dict[str, bytes]:
        root = self.cache / "objects"
        return {
            p.parent.name + p.name: p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        }


@pytest.fixture(params=KINDS)
def side(request: pytest.FixtureRequest, tmp_path: Path) -> RemoteSide:
    s3 = request.getfixturevalue("s3") if request.param == "s3" else None
    return make_side(request.param, tmp_path, s3)


@pytest.fixture
def clone(side: RemoteSide, tmp_path: Path) -> Callable[[str], Clone]:
    return lambda name: Clone(tmp_path / name, side, tmp_path, name)


def test_a_second_clone_restores_every_step_without_running_it(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    a = clone("a")
    assert a.run() == ({"make": "ran", "copy": "ran"}, "")
    assert any(k.startswith("actions/") for k in side.files())

    b = clone("b")
    plan = b.cli("plan")
    assert plan.returncode == 0, plan.stderr
    assert "make  restore (remote)  found in the remote cache; restores out, one.txt" in plan.stdout
    assert "copy  restore (remote)  found in the remote cache; restores two.txt" in plan.stdout
    as_json = json.loads(b.cli("plan", "--json").stdout)[0]["steps"]
    assert [(s["action"], s["source"]) for s in as_json] == [("restore", "remote")] * 2

    done = b.cli("run")
    assert done.returncode == 0, done.stderr
    assert "2 steps: 2 restored in" in done.stdout
    assert f"remote cache {side.shown}: fetched 2 results" in done.stdout
    assert (a.ran("make"), a.ran("copy")) == (1, 1)  # B ran nothing
    assert (b.ws.root / "out/sub/x.txt").read_text() == "hello\n"
    assert (b.ws.root / "two.txt").read_bytes() == ONE
    # the results are now B's own: the next run needs no remote at all
    assert b.run("--no-remote")[0] == {"make": "cached", "copy": "cached"}


# what a CI job restoring from the remote must not pay for: the cloud libraries (S3 is read
# with signed requests of the standard library, cache/remote/s3.py), DVC, Hydra (this recipe has
# no Hydra tree), the steps' own libraries
HEAVY = {"fsspec", "s3fs", "botocore", "aiobotocore", "aiohttp", "dvc", "hydra", "omegaconf"}
HEAVY |= {"sklearn", "numpy", "pandas", "sqlalchemy", "optuna"}


@pytest.mark.parametrize("side", ["s3"], indirect=True)
def test_restoring_every_step_from_s3_imports_no_heavy_library(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    a = clone("a")
    assert a.run()[0] == {"make": "ran", "copy": "ran"}
    b = clone("b")
    probe = (
        "import contextlib, io, json, os, sys\n"
        f"os.environ.update({b.env()!r})\n"
        "from mlbuild.cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    code = main(['run', '--json'])\n"
        "steps = {s['name']: s['status'] for s in json.loads(out.getvalue())['steps']}\n"
        f"heavy = sorted(set({sorted(HEAVY)!r}) & {{m.split('.')[0] for m in sys.modules}})\n"
        "print(json.dumps([code, steps, heavy]))\n"
    )
    done = b.ws.cli_python(probe)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [0, {"make": "restored", "copy": "restored"}, []]
    assert (a.ran("make"), a.ran("copy")) == (1, 1)


@BACKENDS
def test_what_a_run_uploads_is_objects_and_entries_only(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    clone("a").run()
    keys = side.files()
    assert object_key(ONE) in keys
    assert len([k for k in keys if k.startswith("actions/")]) == 2
    assert all(k.startswith(("objects/", "actions/")) for k in keys), keys
    assert not [k for k in keys if "/." in k], "a temporary file was left behind"


@BACKENDS
def test_a_truncated_remote_object_is_reported_once_and_the_step_runs(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    a = clone("a")
    a.run()
    side.write(object_key(ONE), b"on")
    b = clone("b")
    result, said = b.run()
    assert result == {"make": "ran", "copy": "restored"}
    digest = digest_of(ONE)
    warning = (
        f"{side.shown}: the object {digest[:12]}… of one.txt is 2 bytes, expected 4 (truncated)"
    )
    assert said.count(warning) == 1, said
    assert b"on" not in b.local_objects().values()
    assert a.ran("make") == 2 and a.ran("copy") == 1
    # B's upload replaced the damaged object: a third clone restores everything again
    assert side.read(object_key(ONE)) == ONE
    c = clone("c")
    assert c.run()[0] == {"make": "restored", "copy": "restored"}
    assert a.ran("make") == 2


@BACKENDS
def test_an_altered_remote_object_is_never_restored_nor_kept(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    a = clone("a")
    a.run()
    side.write(object_key(ONE), b"onE\n")  # same size: only its hash can tell
    b = clone("b")
    result, said = b.run()
    assert result == {"make": "ran", "copy": "restored"}
    assert said.count("of one.txt does not match its digest (altered); ignored") == 1, said
    assert b"onE\n" not in b.local_objects().values()
    assert (b.ws.root / "one.txt").read_bytes() == ONE
    assert side.read(object_key(ONE)) == ONE  # repaired by B's upload
    for name, data in b.local_objects().items():  # B's cache holds only what hashes right
        assert name.endswith(".dir") or digest_of(data) == name


@BACKENDS
def test_a_damaged_file_inside_a_remote_directory_output_is_caught(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    clone("a").run()
    side.write(object_key(b"hello\n"), b"HELLO\n")
    b = clone("b")
    result, said = b.run()
    assert result == {"make": "ran", "copy": "restored"}
    assert "of out does not match its digest (altered); ignored" in said
    assert (b.ws.root / "out/sub/x.txt").read_text() == "hello\n"


@BACKENDS
def test_a_malformed_remote_entry_is_ignored_and_replaced(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    a = clone("a")
    a.run()
    entries = side.files("actions/")
    copy_entry = next(k for k in entries if b'"step": "copy"' in side.read(k))
    side.write(copy_entry, b'{"step": "copy", "outs": {"../../etc/passwd": 1}}')
    b = clone("b")
    result, said = b.run()
    assert result == {"make": "restored", "copy": "ran"}
    assert said.count("the entry of step 'copy' is malformed (expected an object with exactly") == 1
    assert not (b.ws.root.parent.parent / "etc").exists()
    assert json.loads(side.read(copy_entry))["step"] == "copy"  # B wrote a good one
    assert clone("c").run()[0] == {"make": "restored", "copy": "restored"}


@BACKENDS
def test_an_object_missing_from_the_remote_means_the_step_runs(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    clone("a").run()
    side.delete(object_key(ONE))
    b = clone("b")
    plan = b.cli("plan")
    assert "make  run" in plan.stdout
    assert "the remote cache's copy of one.txt is missing or damaged" in plan.stdout
    assert "has the entry of step 'make' but not its object" in plan.stderr
    assert b.run()[0] == {"make": "ran", "copy": "restored"}


@pytest.mark.parametrize(
    ("side", "how"),
    [
        ("directory", "--read-only"),
        ("directory", "--no-push"),
        ("s3", "MLBUILD_REMOTE_READ_ONLY=1"),
        # what the pipeline of `mlbuild ci gitlab` sets on merge requests
        ("s3", "MLBUILD_REMOTE_CACHE_PUSH=false"),
    ],
    indirect=["side"],
)
def test_a_read_only_run_uploads_nothing(
    clone: Callable[[str], Clone], side: RemoteSide, how: str
) -> None:
    a = clone("a")
    flag, env = ([how], None) if how.startswith("--") else ([], dict([how.split("=")]))
    assert a.run(*flag, env=env)[0] == {"make": "ran", "copy": "ran"}
    assert side.files() == []


@BACKENDS
def test_a_read_only_run_still_restores(clone: Callable[[str], Clone], side: RemoteSide) -> None:
    clone("a").run()
    before = side.files()
    b = clone("b")
    assert b.run(env={"MLBUILD_REMOTE_READ_ONLY": "true"})[0] == {
        "make": "restored",
        "copy": "restored",
    }
    refused = b.cli("cache", "push", env={"MLBUILD_REMOTE_READ_ONLY": "1"})
    assert refused.returncode == 2
    assert refused.stderr == (
        f"mlbuild: MLBUILD_REMOTE_READ_ONLY is set: this environment only reads the remote "
        f"cache {side.shown}\n"
    )
    refused = b.cli("cache", "push", env={"MLBUILD_REMOTE_CACHE_PUSH": "false"})
    assert (refused.returncode, refused.stderr) == (
        2,
        f"mlbuild: MLBUILD_REMOTE_CACHE_PUSH is set: this environment only reads the remote "
        f"cache {side.shown}\n",
    )
    assert side.files() == before


def test_push_pull_and_status_move_results_by_hand(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    a = clone("a")
    a.run("--no-remote")
    assert side.files() == []
    status = a.cli("cache", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[:3] == [
        f"remote cache: {side.shown}",
        "STEP  LOCAL  REMOTE  FINGERPRINT   NOTE",
        status.stdout.splitlines()[2],
    ]
    assert [line.split()[:3] for line in status.stdout.splitlines()[2:]] == [
        ["make", "yes", "no"],
        ["copy", "yes", "no"],
    ]
    pushed = a.cli("cache", "push", "copy")  # and what it depends on
    assert pushed.returncode == 0, pushed.stderr
    assert f"pushed 2 of 2 steps to {side.shown}" in pushed.stdout

    b = clone("b")
    places = json.loads(b.cli("cache", "status", "--json").stdout)
    assert [(p["step"], p["local"], p["remote"]) for p in places["steps"]] == [
        ("make", "no", "yes"),
        ("copy", "no", "yes"),
    ]
    pulled = b.cli("cache", "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert f"pulled 2 of 2 steps from {side.shown}" in pulled.stdout
    assert not (b.ws.root / "one.txt").exists()  # pull fills the cache, not the workspace
    assert b.run("--no-remote")[0] == {"make": "restored", "copy": "restored"}
    assert (a.ran("make"), a.ran("copy")) == (1, 1)


@BACKENDS
def test_a_result_with_one_output_damaged_is_not_pulled_at_all(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    # make's outputs (a directory and a file) are fetched at once: the directory's objects
    # arriving whole does not make the result usable while one.txt's object is altered
    a = clone("a")
    a.run()
    side.write(object_key(ONE), b"onE\n")  # the size its entry says: only the hash can tell
    b = clone("b")
    pulled = json.loads(b.cli("cache", "pull", "--json").stdout)["steps"]
    # copy's two.txt has one.txt's bytes: the same (altered) object
    assert [(t["step"], t["outcome"], t["detail"]) for t in pulled] == [
        ("make", "failed", "the remote cache's copy of one.txt is missing or damaged"),
        ("copy", "failed", "the remote cache's copy of two.txt is missing or damaged"),
    ]
    places = json.loads(b.cli("cache", "status", "--json").stdout)["steps"]
    assert [(p["step"], p["local"]) for p in places] == [("make", "no"), ("copy", "no")]
    assert b"onE\n" not in b.local_objects().values()


def test_the_cache_commands_need_a_remote(ws: Workspace) -> None:
    ws.recipe(RECIPE.format(section=""))
    done = ws.cli("cache", "status", env={"MLBUILD_REMOTE_CACHE": ""})
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: no remote cache is configured; name one in ml.yaml (`cache: {remote: "
        "s3://BUCKET/PREFIX}`) or in MLBUILD_REMOTE_CACHE\n",
    )
    done = ws.cli("cache")
    assert done.returncode == 2
    assert "the following arguments are required: SUBCOMMAND" in done.stderr


@BACKENDS
def test_two_clones_writing_the_same_results_at_once_are_safe(
    clone: Callable[[str], Clone], side: RemoteSide
) -> None:
    a, b = clone("a"), clone("b")
    first = a.ws.start("run", "-q", env=a.env())
    second = b.ws.start("run", "-q", env=b.env())
    for proc in (first, second):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    entries = side.files("actions/")
    assert len(entries) == 2
    for key in entries:
        json.loads(side.read(key))  # each whole
    assert not [k for k in side.files() if "/." in k]
    ran_before = (a.ran("make"), a.ran("copy"))
    assert clone("c").run()[0] == {"make": "restored", "copy": "restored"}
    assert (a.ran("make"), a.ran("copy")) == ran_before
