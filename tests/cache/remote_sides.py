"""The remote cache's three kinds of location, each as a test sees it: how clones are pointed at
it, and its files, to look at and to damage.

- ``directory``: ``MLBUILD_REMOTE_CACHE=/path`` (the environment variable);
- ``s3``: ``cache: {remote: s3://BUCKET/cache}`` in ml.yaml, on a real moto server, the endpoint
  and credentials from the standard ``AWS_*`` variables;
- ``dvc``: ``cache: {remote: dvc://storage}``, a local DVC remote configured in each clone.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blake3 import blake3

from tests.conftest import Workspace

KINDS = ["directory", "s3", "dvc"]


def digest_of(data: bytes) -> str:
    return str(blake3(data).hexdigest())


def object_key(data: bytes) -> str:
    digest = digest_of(data)
    return f"objects/{digest[:2]}/{digest[2:]}"


@dataclass
class RemoteSide:
    kind: str
    section: str  # the recipe's cache section ("" when the environment names the remote)
    env: dict[str, str]
    folder: Path | None = None  # the directory kinds' files
    bucket: str = ""
    s3: Any = None
    dvc_remote: Path | None = None
    shown: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def prepare(self, ws: Workspace) -> None:
        """Make ``ws`` able to reach the remote (a DVC repository with the remote, for dvc)."""
        if self.kind == "dvc":
            assert self.dvc_remote is not None
            dvc(ws.root, "init", "--no-scm", "-q")
            dvc(ws.root, "remote", "add", "storage", str(self.dvc_remote))

    def files(self, prefix: str = "") -> list[str]:
        if self.folder is not None:
            if not self.folder.exists():
                return []
            found = [p for p in self.folder.rglob("*") if p.is_file() or p.is_symlink()]
            keys = [p.relative_to(self.folder).as_posix() for p in found]
        else:
            listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="cache/")
            keys = [o["Key"].removeprefix("cache/") for o in listing.get("Contents", [])]
        return sorted(k for k in keys if k.startswith(prefix))

    def read(self, key: str) -> bytes:
        if self.folder is not None:
            return (self.folder / key).read_bytes()
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=f"cache/{key}")["Body"].read()
        return body

    def write(self, key: str, data: bytes) -> None:
        if self.folder is not None:
            path = self.folder / key
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                path.chmod(0o644)
                path.unlink()
            path.write_bytes(data)
        else:
            self.s3.put_object(Bucket=self.bucket, Key=f"cache/{key}", Body=data)

    def delete(self, key: str) -> None:
        if self.folder is not None:
            (self.folder / key).unlink()
        else:
            self.s3.delete_object(Bucket=self.bucket, Key=f"cache/{key}")


def make_side(kind: str, tmp_path: Path, s3: Any) -> RemoteSide:
    if kind == "directory":
        folder = tmp_path / "team-cache"
        return RemoteSide(
            kind, "", {"MLBUILD_REMOTE_CACHE": str(folder)}, folder, shown=str(folder)
        )
    if kind == "s3":
        bucket = s3.bucket()
        url = f"s3://{bucket}/cache"
        return RemoteSide(
            kind,
            f"cache: {{remote: {url}}}",
            dict(s3.env),
            bucket=bucket,
            s3=s3.client(),
            shown=url,
        )
    storage = tmp_path / "dvc-storage"
    return RemoteSide(
        kind,
        "cache: {remote: dvc://storage}",
        {},
        folder=storage / "mlbuild",
        dvc_remote=storage,
        shown="dvc://storage",
    )


def dvc(root: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
