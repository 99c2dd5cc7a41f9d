"""A package index of our own: tiny wheels built here and served by a real HTTP server, so lock,
check and build run pip, pip-tools and pipenv for real without the network."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.serve.conftest import free_port, serving  # noqa: F401 - the fixture, for tests here

# name → version → (requirements, module source)
PACKAGES: dict[str, dict[str, tuple[list[str], str]]] = {
    "alpha": {
        "1.0": ([], "VERSION = '1.0'\n"),
        "2.0": ([], "VERSION = '2.0'\n"),
    },
    "beta": {"1.0": (["alpha>=1.0"], "import alpha\n\nVERSION = '1.0'\n")},
    "gamma": {"1.0": ([], "VERSION = '1.0'\n")},
}


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(folder: Path, name: str, version: str, requires: list[str], module: str) -> Path:
    """A pure-Python wheel holding the module ``name`` (PEP 427, with a correct RECORD)."""
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{name}.py": module.encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), data)
    return path


@dataclass(frozen=True)
class Index:
    url: str  # http://127.0.0.1:PORT/simple
    root: Path

    @property
    def env(self) -> dict[str, str]:
        """pip's settings that point pip, pip-compile and pipenv at this index only."""
        return {
            "PIP_INDEX_URL": self.url,
            "PIP_NO_CACHE_DIR": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }


@pytest.fixture(scope="session")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """The index (``simple/NAME/`` listings by ``python -m http.server``), one per session."""
    root = tmp_path_factory.mktemp("index")
    for name, versions in PACKAGES.items():
        folder = root / "simple" / name
        folder.mkdir(parents=True)
        for version, (requires, module) in versions.items():
            make_wheel(folder, name, version, requires, module)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import time
        import urllib.request

        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/simple/", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        yield Index(f"http://127.0.0.1:{port}/simple", root)
    finally:
        server.terminate()
        server.wait(timeout=10)


@dataclass(frozen=True)
class Registry:
    address: str  # 127.0.0.1:PORT
    root: Path


def start_registry(
    root: Path, htpasswd: str | None = None
) -> tuple[Registry, subprocess.Popen[bytes]]:
    """Debian's ``docker-registry`` on a free port, its storage under ``root``."""
    port = free_port()
    auth = ""
    if htpasswd is not None:
        (root / "htpasswd").write_text(htpasswd)
        auth = f"auth:\n  htpasswd: {{realm: test, path: {root / 'htpasswd'}}}\n"
    (root / "config.yml").write_text(
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n" + auth
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import time
    import urllib.error
    import urllib.request

    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.05)
    return Registry(f"127.0.0.1:{port}", root), proc


def docker_ready() -> str | None:
    """Why the Docker tests cannot run here, or None (scripts/services starts what they need)."""
    import shutil

    if shutil.which("docker-registry") is None:
        return "Debian's docker-registry is not installed (./scripts/services installs it)"
    done = subprocess.run(
        ["docker", "image", "inspect", "mlbuild-base:bookworm"], capture_output=True, check=False
    )
    if done.returncode != 0:
        return "no Docker engine with the base image mlbuild-base:bookworm (./scripts/services)"
    return None


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    found, proc = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield found
    finally:
        proc.terminate()
        proc.wait(timeout=10)
