"""A Hydra config file that is a FIFO is refused by name, never opened: `plan` waited for a
writer for ever (mlbuild's YAML limit check opened it, and Hydra would have)."""

from __future__ import annotations

import os

from tests.conftest import Workspace


def test_a_fifo_in_the_hydra_config_directory_is_named_not_waited_on(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: p
        params: {config_dir: conf, config_name: config}
        steps:
          s: {cmd: "echo ${params.a} > o.txt", params: [a], outs: [o.txt]}
        """
    )
    (ws.root / "conf").mkdir()
    os.mkfifo(ws.root / "conf/config.yaml")
    done = ws.cli("plan", timeout=60)
    assert done.returncode == 2, done.stderr
    assert (
        "mlbuild: conf/config.yaml: is not a regular file (a FIFO, socket or device); mlbuild "
        "never opens one (it could wait for ever)" in done.stderr
    )
    (ws.root / "conf/config.yaml").unlink()
    (ws.root / "conf/config.yaml").write_text("a: 1\n")
    assert ws.cli("run", timeout=60).returncode == 0
    assert ws.read("o.txt") == "1\n"
