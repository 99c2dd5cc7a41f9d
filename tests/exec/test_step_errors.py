"""One step, one error policy: whatever goes wrong inside a step fails that step, with a message;
the other steps' outcomes stand. Exit 3 and a crash log only for a bug outside any step."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlbuild import __version__
from tests.conftest import CHILD_ENV, Workspace, statuses

THREE_WAYS = """\
schema_version: 1
name: demo
steps:
  big:
    cmd: head -c 4194304 /dev/zero > big.bin
    outs: [big.bin]
  after_big:
    cmd: cp big.bin copy.bin
    deps: [big.bin]
    outs: [copy.bin]
  loop:
    cmd: ln -s loop.bin loop.bin
    outs: [loop.bin]
  small:
    cmd: echo fine > small.txt
    outs: [small.txt]
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, for a cache that fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_and_a_symlink_loop_fail_their_steps_and_the_others_go_on(
    ws: Workspace, small_disk: Path
) -> None:
    ws.recipe(THREE_WAYS)
    cache = small_disk / "cache"
    env = {"MLBUILD_CACHE_DIR": str(cache)}
    done = ws.cli("run", "-j", "1", "--keep-going", env=env)
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(
        rf"^big: FAILED: cannot store output big.bin: no space left on the device to write "
        rf"{cache}/objects/[0-9a-f]{{2}}/[0-9a-f]{{62}} \(4,194,304 bytes needed, [\d,]+ bytes "
        r"free\); free some space \(`mlbuild gc` removes cached results nothing uses\) and try "
        r"again$",
        done.stdout,
        re.MULTILINE,
    ), done.stdout
    assert "after_big: skipped: not run: 'big' failed\n" in done.stdout
    assert "loop: FAILED: 'loop.bin' goes through a symlink loop; remove the loop\n" in done.stdout
    assert "small: done in " in done.stdout
    assert "4 steps: 2 failed, 1 ran, 1 skipped in " in done.stdout
    assert done.stderr.startswith(
        "mlbuild: step 'big', 'loop' failed: cannot store output big.bin: no space left on the "
        "device"
    )
    (record,) = (ws.root / ".mlbuild/runs/journal").glob("*.json")
    run = json.loads(record.read_text())
    assert run["status"] == "failed"
    assert {s["name"]: s["status"] for s in run["steps"]} == {
        "big": "failed",
        "after_big": "skipped",
        "loop": "failed",
        "small": "ran",
    }
    assert [a["path"] for a in run["artifacts"]] == ["small.txt"]
    again = ws.run_json("small", env=env)
    assert statuses(again) == {"small": "cached"}


def inject(ws: Workspace, patch: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``mlbuild ARGS`` for real, after ``patch`` (Python) planted a bug in it."""
    code = f"import sys\n{patch}\nfrom mlbuild.cli.main import main\nsys.exit(main({list(args)!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ws.root,
        env={**os.environ, **CHILD_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


BUG_IN_METRICS = """\
import mlbuild.exec.outputs as local
def broken(*args, **kwargs):
    raise RuntimeError("metrics reader broke")
local.read_metrics = broken
"""


def test_a_bug_inside_one_step_fails_that_step_with_a_crash_log(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          measured: {cmd: 'echo "{}" > m.json', metrics: [m.json]}
          plain: {cmd: echo fine > plain.txt, outs: [plain.txt]}
        """
    )
    done = inject(ws, BUG_IN_METRICS, "run", "-j", "1", "-k")
    assert done.returncode == 1, done.stderr
    assert "plain: done in " in done.stdout
    (log,) = (ws.root / ".mlbuild/logs").glob("crash-*.log")
    assert (
        "measured: FAILED: internal error: RuntimeError: metrics reader broke (a bug in mlbuild; "
        f"the traceback is in .mlbuild/logs/{log.name})" in done.stdout
    )
    text = log.read_text()
    assert text.startswith(f"mlbuild {__version__} crashed at ")
    assert "Traceback (most recent call last):" in text
    assert text.rstrip().endswith("RuntimeError: metrics reader broke")


BUG_OUTSIDE_STEPS = """\
import os
import mlbuild.runs.record as record
def broken(*args, **kwargs):
    raise ValueError("record broke near " + os.environ["API_TOKEN"])
record.finished_record = broken
"""


def test_a_bug_outside_any_step_exits_3_with_a_crash_log_and_no_secret(ws: Workspace) -> None:
    secret = "tok-5ecret-5ecret"
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          upload: {cmd: "true", secrets: [API_TOKEN]}
        """
    )
    done = inject(ws, BUG_OUTSIDE_STEPS, "run", "--note", secret, env={"API_TOKEN": secret})
    assert done.returncode == 3
    (log,) = (ws.root / ".mlbuild/logs").glob("crash-*.log")
    assert done.stderr == (
        "mlbuild: internal error: ValueError: record broke near ***\n"
        f"This is a bug in mlbuild; the traceback is in {log}\n"
    )
    text = log.read_text()
    assert text.startswith(f"mlbuild {__version__} crashed at ")
    assert "\ncommand: mlbuild run --note ***\n" in text
    assert "ValueError: record broke near ***" in text
    for path in (ws.root / ".mlbuild").rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path


def test_a_crash_outside_a_workspace_logs_to_the_temp_dir(ws: Workspace, tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    patch = "import mlbuild.cli.commands as c\nc.cmd_schema = lambda args: 1 / 0"
    done = inject(ws, patch, "schema", env={"TMPDIR": str(temp)})
    assert done.returncode == 3
    (log,) = temp.glob("crash-*.log")
    assert done.stderr.endswith(f"This is a bug in mlbuild; the traceback is in {log}\n")
    assert "ZeroDivisionError" in log.read_text()


def test_a_log_that_cannot_be_written_stops_and_fails_its_step(
    ws: Workspace, small_disk: Path
) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          chatty: {cmd: "yes chatty | head -c 2000000; sleep 300"}
          quiet: {cmd: echo > quiet.txt, outs: [quiet.txt]}
        """
    )
    logs = ws.root / ".mlbuild/logs"
    logs.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(small_disk), str(logs)], check=True)
    try:
        done = ws.cli("run", "-j", "2", "-q", "-k", timeout=60)
    finally:
        subprocess.run(["umount", "-l", str(logs)], check=True)
    assert done.returncode == 1, done.stderr
    assert re.search(
        rf"^chatty: FAILED: no space left on the device to write "
        rf"{re.escape(str(logs))}/chatty\.log \([\d,]+ bytes free\); free some space",
        done.stdout,
        re.MULTILINE,
    ), done.stdout
    assert "quiet: done in " in done.stdout


def test_state_that_cannot_be_written_fails_the_step_with_the_path(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          one: {cmd: echo > one.txt, outs: [one.txt]}
        """
    )
    (ws.root / ".mlbuild").mkdir()
    (ws.root / ".mlbuild/params").write_text("not a directory")
    done = ws.cli("run")
    assert done.returncode == 1
    # refused by name before anything runs (mlbuild.graph.workspace, ensure_meta)
    params = ws.root / ".mlbuild" / "params"
    assert f"mlbuild: {params} is a file, not what mlbuild keeps there;" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_output_linking_out_of_the_workspace_fails_its_step_and_nothing_is_stored(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_text("root:SECRET-HASH:19000\n")
    ws.recipe(
        f"""\
schema_version: 1
name: demo
steps:
  file:
    cmd: ln -s {outside}/shadow o.txt
    outs: [o.txt]
  folder:
    cmd: mkdir -p d/sub && echo fine > d/ok.txt && ln -s {outside}/shadow d/sub/s
    outs: [d]
  inside:
    cmd: mkdir -p e && echo here > e/real.txt && ln -s real.txt e/link.txt
    outs: [e]
"""
    )
    done = ws.cli("run", "--keep-going")
    assert done.returncode == 1
    told = done.stdout + done.stderr
    assert (
        f"folder: FAILED: output 'd/sub/s' is a symlink to {outside}/shadow, outside the "
        "workspace; mlbuild stores only what lies inside it: copy the file instead of linking it"
    ) in told
    assert "file: FAILED: 'o.txt' resolves through the symlink 'o.txt' to" in told
    objects = ws.root / ".mlbuild"
    stored = [p.read_bytes() for p in objects.rglob("*") if p.is_file() and not p.is_symlink()]
    assert not any(b"SECRET-HASH" in content for content in stored)
    again = ws.cli("run", "inside", "--json")
    assert statuses(json.loads(again.stdout)) == {"inside": "cached"}, again.stderr
