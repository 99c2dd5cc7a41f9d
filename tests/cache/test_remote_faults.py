"""A remote cache that is down, misconfigured, hostile or holds secrets: a run is slower, never
failed; a mistake a user made is named with exit code 2; a credential is never shown."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.cache.remote_sides import digest_of, dvc, object_key
from tests.cli.test_extras import cli_without
from tests.conftest import Workspace, statuses
from tests.s3 import SECRET_KEY, free_port

pytestmark = pytest.mark.slow

RECIPE = """\
schema_version: 1
name: demo
{section}
steps:
  make: {{cmd: echo one > one.txt, outs: [one.txt]}}
  copy: {{cmd: cp one.txt two.txt, deps: [one.txt], outs: [two.txt]}}
"""
ONE = b"one\n"


def recipe(ws: Workspace, section: str = "") -> Workspace:
    return ws.recipe(RECIPE.format(section=section))


def test_a_remote_that_is_down_makes_the_run_slower_never_failed(
    ws: Workspace, s3: Any, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = {**s3.env, "AWS_ENDPOINT_URL": dead, "MLBUILD_REMOTE_CACHE": "s3://team/cache"}
    done = recipe(ws).cli("run", env=env)
    assert done.returncode == 0, done.stderr
    assert "2 steps: 2 ran in" in done.stdout
    warnings = [line for line in done.stdout.splitlines() if "unreachable" in line]
    assert len(warnings) == 1, done.stdout
    assert warnings[0].startswith(
        f"make: the remote cache s3://team/cache is unreachable (Could not connect to the "
        f'endpoint URL: "{dead}/team/cache/actions/'
    )
    assert warnings[0].endswith("); going on without it")


def test_a_remote_directory_that_is_a_file_is_warned_about_once(
    ws: Workspace, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    done = recipe(ws).cli("run", env={"MLBUILD_REMOTE_CACHE": str(blocker)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(f"the remote cache {blocker} is unreachable (") == 1
    assert blocker.read_text() == "x"


def test_credentials_are_never_shown_nor_written(ws: Workspace, s3: Any, tmp_path: Path) -> None:
    bucket = s3.bucket()
    recipe(ws, f"cache: {{remote: s3://{bucket}/c}}")
    outputs = []
    for args in (["run", "--json"], ["plan"], ["cache", "status", "--json"], ["run", "--force"]):
        done = ws.cli(*args, env=s3.env)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    # a password in the URL, and a remote that refuses: every message is about it
    url = f"s3://someone:{SECRET_KEY}@{bucket}/c"
    dead = {**s3.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    for args in (["run", "--force"], ["cache", "push"], ["plan"]):
        done = ws.cli(*args, env={**dead, "MLBUILD_REMOTE_CACHE": url})
        outputs.append(done.stdout + done.stderr)
    assert any("s3://" + bucket in text for text in outputs)
    for text in outputs:
        assert SECRET_KEY not in text
    for path in (ws.root / ".mlbuild").rglob("*"):
        if path.is_file():
            assert SECRET_KEY.encode() not in path.read_bytes(), path
    listing = s3.client().list_objects_v2(Bucket=bucket)["Contents"]
    for item in listing:
        body = s3.client().get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        assert SECRET_KEY.encode() not in body, item["Key"]


def test_the_environment_wins_over_the_recipe_and_empty_turns_it_off(
    ws: Workspace, tmp_path: Path
) -> None:
    recipe(ws, f"cache: {{remote: {tmp_path / 'from-recipe'}}}")
    done = ws.cli("run", env={"MLBUILD_REMOTE_CACHE": str(tmp_path / "from-env")})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from-env" / object_key(ONE)).is_file()
    assert not (tmp_path / "from-recipe").exists()
    done = ws.cli("run", "--force", env={"MLBUILD_REMOTE_CACHE": ""})
    assert done.returncode == 0 and "remote cache" not in done.stdout
    assert not (tmp_path / "from-recipe").exists()


def test_a_relative_remote_in_the_recipe_is_relative_to_it(ws: Workspace) -> None:
    recipe(ws, "cache: {remote: ../shared}")
    (ws.root / "sub").mkdir()
    done = ws.cli("-C", "sub", "run")
    assert done.returncode == 0, done.stderr
    assert (ws.root.parent / "shared" / object_key(ONE)).is_file()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "ftp://files.example.com/cache",
            "MLBUILD_REMOTE_CACHE: 'ftp://files.example.com/cache' has the unsupported scheme "
            "'ftp://'; expected a path, an s3://, gs://, azure:// or sftp:// URL, file://PATH, "
            "or dvc://NAME (a DVC remote)",
        ),
        (
            "s3:///prefix",
            "MLBUILD_REMOTE_CACHE: 's3:///prefix' names no bucket, container or host after s3://",
        ),
        (
            "dvc://a/b",
            "MLBUILD_REMOTE_CACHE: 'dvc://a/b' expected dvc://NAME, NAME being a remote "
            "of `dvc remote list`",
        ),
        (
            "s3://b/x\ny",
            "MLBUILD_REMOTE_CACHE: 's3://b/x\\ny' holds a control character (a newline?)",
        ),
    ],
)
def test_a_bad_remote_in_the_environment_is_a_usage_error(
    ws: Workspace, value: str, message: str
) -> None:
    done = recipe(ws).cli("run", env={"MLBUILD_REMOTE_CACHE": value})
    assert (done.returncode, done.stderr) == (2, f"mlbuild: {message}\n")
    assert not (ws.root / "one.txt").exists()


@pytest.mark.parametrize("name", ["MLBUILD_REMOTE_READ_ONLY", "MLBUILD_REMOTE_CACHE_PUSH"])
def test_a_bad_read_only_switch_is_a_usage_error(ws: Workspace, tmp_path: Path, name: str) -> None:
    env = {"MLBUILD_REMOTE_CACHE": str(tmp_path / "r"), name: "maybe"}
    done = recipe(ws).cli("run", env=env)
    assert (done.returncode, done.stderr) == (
        2,
        f"mlbuild: {name}: expected 1 or 0 (true or false), got 'maybe'\n",
    )
    assert not (tmp_path / "r").exists()


def test_pushing_allowed_and_read_only_at_once_is_read_only(ws: Workspace, tmp_path: Path) -> None:
    env = {
        "MLBUILD_REMOTE_CACHE": str(tmp_path / "r"),
        "MLBUILD_REMOTE_CACHE_PUSH": "true",
        "MLBUILD_REMOTE_READ_ONLY": "1",
    }
    assert recipe(ws).cli("run", env=env).returncode == 0
    assert not (tmp_path / "r").exists()
    env["MLBUILD_REMOTE_READ_ONLY"] = ""
    assert ws.cli("run", "--force", env=env).returncode == 0
    assert (tmp_path / "r" / object_key(ONE)).is_file()


def test_the_local_cache_is_not_a_remote(ws: Workspace) -> None:
    done = recipe(ws).cli("run", env={"MLBUILD_REMOTE_CACHE": ".mlbuild/cache"})
    assert done.returncode == 2
    assert "is the local cache (" in done.stderr and "or overlaps it" in done.stderr


def test_a_library_the_remote_needs_is_named(ws: Workspace) -> None:
    recipe(ws, "cache: {remote: gs://team-bucket/cache}")
    done = cli_without(ws, ["gcsfs"], "run")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: the remote cache gs://team-bucket/cache needs the 'gcsfs' package, which is not "
        "installed; install it with `pip install gcsfs`\n",
    )
    recipe(ws, "cache: {remote: s3://team-bucket/cache}")
    done = cli_without(ws, ["s3fs"], "run")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: the remote cache s3://team-bucket/cache needs the 's3fs' package, which is not "
        "installed; install it with `pip install 'mlbuild-engine[remote]'`\n",
    )


def test_a_run_that_finds_every_step_locally_imports_no_cloud_library(
    ws: Workspace, s3: Any
) -> None:
    recipe(ws, f"cache: {{remote: s3://{s3.bucket()}/c}}")
    assert ws.cli("run", env=s3.env).returncode == 0
    probe = (
        "import os, sys, contextlib, io\n"
        f"os.environ.update({s3.env!r})\n"
        "from mlbuild.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main(['run'])\n"
        "print(code, sorted({'fsspec', 's3fs', 'botocore', 'aiobotocore', 'dvc'} & "
        "{m.split('.')[0] for m in sys.modules}))\n"
    )
    assert ws.cli_python(probe).stdout.strip() == "0 []"


def test_an_unknown_dvc_remote_is_a_warning_in_a_run_and_an_error_by_hand(ws: Workspace) -> None:
    recipe(ws, "cache: {remote: dvc://nope}")
    dvc(ws.root, "init", "--no-scm", "-q")
    done = ws.cli("run")
    assert done.returncode == 0, done.stderr
    assert (
        "make: the remote cache dvc://nope is unreachable (DVC has no remote named 'nope'; list "
        "them with `dvc remote list`); going on without it"
    ) in done.stdout
    by_hand = ws.cli("cache", "status")
    assert (by_hand.returncode, by_hand.stderr) == (
        1,
        "mlbuild: the remote cache dvc://nope cannot be used: DVC has no remote named 'nope'; "
        "list them with `dvc remote list`\n",
    )


def test_an_entry_naming_other_outputs_is_ignored(ws: Workspace, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    env = {"MLBUILD_REMOTE_CACHE": str(remote), "MLBUILD_CACHE_DIR": str(tmp_path / "a")}
    assert recipe(ws).cli("run", env=env).returncode == 0
    entry = next(p for p in remote.glob("actions/*/*.json") if b'"make"' in p.read_bytes())
    planted = json.loads(entry.read_text())
    planted["outs"] = {"../escape.txt": planted["outs"]["one.txt"]}
    entry.write_text(json.dumps(planted))
    (ws.root / "one.txt").unlink()
    (ws.root / "two.txt").unlink()
    done = ws.cli("run", "--json", env={**env, "MLBUILD_CACHE_DIR": str(tmp_path / "b")})
    assert done.returncode == 0, done.stderr
    assert statuses(json.loads(done.stdout)) == {"make": "ran", "copy": "restored"}
    assert "the entry of step 'make' is malformed (outs: '../escape.txt' is not a relative" in (
        done.stderr
    )
    assert not (ws.root.parent / "escape.txt").exists()


def test_a_symbolic_link_in_a_remote_directory_is_never_followed(
    ws: Workspace, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    env = {"MLBUILD_REMOTE_CACHE": str(remote), "MLBUILD_CACHE_DIR": str(tmp_path / "a")}
    assert recipe(ws).cli("run", env=env).returncode == 0
    target = remote / object_key(ONE)
    target.chmod(0o644)
    target.unlink()
    (tmp_path / "planted").write_bytes(ONE)
    target.symlink_to(tmp_path / "planted")
    for name in ("one.txt", "two.txt"):
        (ws.root / name).unlink()
    done = ws.cli("run", "--json", env={**env, "MLBUILD_CACHE_DIR": str(tmp_path / "b")})
    assert done.returncode == 0, done.stderr
    assert statuses(json.loads(done.stdout))["make"] == "ran"
    digest = digest_of(ONE)
    assert f"the object {digest[:12]}… of one.txt is a symbolic link; ignored" in done.stderr


def test_a_huge_remote_entry_is_not_read(tmp_path: Path) -> None:
    from mlbuild.cache.remote import DirectoryBackend
    from mlbuild.cache.remote.transfer import DamagedError, read_whole

    backend = DirectoryBackend(tmp_path)
    backend.write("actions/ab/x.json", b"{" * 5000)
    with backend.opened("actions/ab/x.json") as found, pytest.raises(DamagedError) as caught:
        read_whole(found, 4096)
    assert caught.value.problem == "is 5,000 bytes, more than the 4,096 mlbuild reads"
    assert os.path.exists(tmp_path / "actions/ab/x.json")
