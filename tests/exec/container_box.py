"""A workspace for container tests, and the requests a scheduler would make in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlbuild.exec.executor import ProcessRequest
from mlbuild.masking import Secrets
from tests.conftest import write_tree
from tests.docker_engine import BASE_IMAGE, remove_containers


class Box:
    """A workspace on disk and the requests a scheduler would make in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lines: list[str] = []
        (root / ".mlbuild" / "logs").mkdir(parents=True)

    def gen(self, tree: dict[str, Any]) -> Box:
        write_tree(self.root, tree)
        return self

    def request(
        self,
        argv: list[str] | str,
        *,
        inputs: list[str] = (),  # type: ignore[assignment]
        outputs: list[str] = (),  # type: ignore[assignment]
        env: dict[str, str] | None = None,
        passthrough: dict[str, str] | None = None,
        secrets: Secrets | None = None,
        timeout: float | None = None,
        options: dict[str, Any] | None = None,
        step: str = "s",
    ) -> ProcessRequest:
        command = ["/bin/sh", "-c", argv] if isinstance(argv, str) else argv
        return ProcessRequest(
            step=step,
            argv=command,
            workspace=self.root,
            env={"PYTHONUNBUFFERED": "1", **(env or {})},
            passthrough=passthrough or {},
            inputs=list(inputs),
            outputs=list(outputs),
            log_path=self.root / ".mlbuild" / "logs" / f"{step}.log",
            secrets=secrets or Secrets(),
            timeout=timeout,
            on_line=self.lines.append,
            options={"image": BASE_IMAGE, **(options or {})},
        )

    def log(self, step: str = "s") -> str:
        return (self.root / ".mlbuild" / "logs" / f"{step}.log").read_text()


def new_box(tmp_path: Path) -> Iterator[Box]:
    """A :class:`Box` in ``tmp_path/ws`` (each test file's ``box`` fixture yields from this);
    afterwards, whatever container of it a failed test left is removed."""
    root = tmp_path / "ws"
    root.mkdir()
    yield Box(root)
    remove_containers(root)
