"""A model repository with a real git history, one kind of change per commit, for ``mlbuild diff``.

Commits are made with fixed names and dates, so their ids — and the golden reports that show
them — are the same on every machine.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import Workspace, write_tree

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Reviewer",
    "GIT_AUTHOR_EMAIL": "reviewer@example.com",
    "GIT_COMMITTER_NAME": "Reviewer",
    "GIT_COMMITTER_EMAIL": "reviewer@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(root: Path, *args: str, stamp: int = 0) -> str:
    date = f"@{1_700_000_000 + stamp * 60} +0000"
    done = subprocess.run(
        ["git", *args],
        cwd=root,
        env={**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


class History:
    """A git repository in ``ws.root``; :meth:`commit` writes files and commits them."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.root = ws.root
        self.count = 0
        git(self.root, "init", "-q", "-b", "main")

    def commit(self, message: str, tree: dict[str, Any], *, tag: str | None = None) -> str:
        write_tree(self.root, tree)
        return self._commit(message, tag)

    def remove(self, message: str, *paths: str, tag: str | None = None) -> str:
        git(self.root, "rm", "-q", "-r", *paths)
        return self._commit(message, tag)

    def _commit(self, message: str, tag: str | None) -> str:
        self.count += 1
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message, stamp=self.count)
        if tag:
            git(self.root, "tag", tag)
        return git(self.root, "rev-parse", "HEAD")


RECIPE = """\
schema_version: 1
name: review-demo
environment: {python: "3.11", requirements: requirements.lock}
params: {config_dir: conf, config_name: config}
data:
  raw: {path: data/raw.csv}
steps:
  prepare:
    cmd: python src/prepare.py
    deps: [src/prepare.py, data:raw]
    params: [data.*]
    outs: [out/prepared.csv]
  train:
    cmd: python src/train.py --lr ${params.train.lr}
    deps: [src/train.py, out/prepared.csv]
    params: [train.*]
    outs: [out/model.txt]
  report:
    cmd: python src/report.py
    deps: [src/report.py, out/model.txt]
    metrics: [metrics.json]
  lint:
    cmd: python -m compileall -q src
    deps: [src]
"""

CONFIG = """\
defaults:
  - train: default
  - _self_
data:
  split: 0.25
"""


def dvc_file(md5: str, size: int) -> str:
    return f"outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: raw.csv\n"


BASE: dict[str, Any] = {
    "ml.yaml": RECIPE,
    "conf": {"config.yaml": CONFIG, "train": {"default.yaml": "lr: 0.1\nepochs: 10\n"}},
    "src": {
        "prepare.py": "print('prepare')\n",
        "train.py": "print('train')\n",
        "report.py": "print('report')\n",
    },
    "data": {
        "raw.csv.dvc": dvc_file("8048d9a2b3e5f6a7c8d9e0f1a2b3c4d5", 1200),
        ".gitignore": "/raw.csv\n",
    },
    ".dvc": {"config": "[core]\n    remote = storage\n"},
    "requirements.lock": "numpy==1.26.4\nscikit-learn==1.4.2\nsix==1.16.0\n",
}


def review_history(ws: Workspace) -> History:
    """Seven commits tagged v1…v7: the base, then one kind of change each."""
    history = History(ws)
    history.commit("base", BASE, tag="v1")
    history.commit(
        "train: three epochs on the command line",
        {
            "ml.yaml": RECIPE.replace(
                "--lr ${params.train.lr}", "--lr ${params.train.lr} --epochs 3"
            )
        },
        tag="v2",
    )
    history.commit(
        "a smaller learning rate", {"conf/train/default.yaml": "lr: 0.05\nepochs: 10\n"}, tag="v3"
    )
    history.commit(
        "new raw data",
        {"data/raw.csv.dvc": dvc_file("5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", 1350)},
        tag="v4",
    )
    history.commit(
        "upgrade numpy, add pandas, drop six",
        {"requirements.lock": "numpy==2.0.1\npandas==2.2.2\nscikit-learn==1.4.2\n"},
        tag="v5",
    )
    recipe = (ws.root / "ml.yaml").read_text()
    evaluate = (
        "  evaluate:\n"
        "    cmd: python src/evaluate.py\n"
        "    deps: [src/evaluate.py, out/model.txt]\n"
        "    metrics: [eval.json]\n"
    )
    history.commit(
        "an evaluate step",
        {"ml.yaml": recipe.replace("  lint:\n", evaluate + "  lint:\n"), "src/evaluate.py": "\n"},
        tag="v6",
    )
    recipe = (ws.root / "ml.yaml").read_text()
    lint = recipe[recipe.index("  lint:\n") :]
    history.commit("no lint step", {"ml.yaml": recipe.replace(lint, "")}, tag="v7")
    return history
