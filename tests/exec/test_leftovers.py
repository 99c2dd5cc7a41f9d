"""Leftover steps a later run may not stop: it refuses, naming the process group."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from mlbuild.errors import LockedError
from mlbuild.exec.leftovers import stop_leftovers
from mlbuild.store import process_token

NOBODY = 65534


def test_a_leftover_it_may_not_signal_is_refused_with_its_process_group() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the check as another user (CI runs as root)")
    leftover = subprocess.Popen(["sleep", "300"], start_new_session=True)  # root's
    meta = Path(tempfile.mkdtemp(prefix="mlbuild-leftovers-"))
    try:
        (meta / "running").mkdir()
        record = {"step": "train", "pid": leftover.pid, "process": process_token(leftover.pid)}
        (meta / "running/train.json").write_text(json.dumps(record))
        for path in (meta, meta / "running", meta / "running/train.json"):
            path.chmod(0o777)
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # a run by an unprivileged user, finding root's leftover
            os.close(read)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                stop_leftovers(meta, lambda text: None)
                message = "not refused"
            except LockedError as exc:
                message = exc.message
            os.write(write, message.encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            message = pipe.read().decode()
        os.waitpid(child, 0)
        assert message == (
            f"step 'train' of an earlier mlbuild run is still running (process group "
            f"{leftover.pid}) and cannot be stopped: Operation not permitted; stop it "
            f"(`kill -- -{leftover.pid}`) and run again"
        )
        assert leftover.poll() is None
        assert (meta / "running/train.json").exists(), "the record must stay until it is stopped"
    finally:
        leftover.kill()
        leftover.wait()
        subprocess.run(["rm", "-rf", str(meta)], check=True)
