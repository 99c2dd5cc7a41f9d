"""The services ``scripts/services`` sets up for the tests (``./scripts/test`` runs it first): the
Docker engine with the base image, and the local registry on 127.0.0.1:5000."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.docker_engine import Engine

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "127.0.0.1:5000"


def registry_get(path: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(f"http://{REGISTRY}{path}", timeout=10) as answer:
        return answer.status, dict(answer.headers), answer.read()


def test_a_second_run_finds_everything_running_and_does_nothing(docker_engine: Engine) -> None:
    done = subprocess.run(
        [str(ROOT / "scripts/services")], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_the_registry_answers_on_loopback(docker_engine: Engine) -> None:
    status, headers, body = registry_get("/v2/")
    assert (status, headers["Docker-Distribution-Api-Version"], body) == (
        200,
        "registry/2.0",
        b"{}",
    )


def test_the_engine_pushes_an_image_to_the_registry(docker_engine: Engine) -> None:
    """What the packaging tests do with it: push an image (here, one tiny file) and find it."""
    name = f"{REGISTRY}/mlbuild-test-{uuid.uuid4().hex[:12]}"
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        data = b"pushed by tests/test_services.py\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    client = docker_engine.client
    client.api.import_image_from_data(layer.getvalue(), repository=name, tag="1")
    try:
        pushed = [json.loads(line) for line in client.api.push(name, tag="1").splitlines()]
        assert [p["error"] for p in pushed if "error" in p] == []
        status, _, body = registry_get(f"/v2/{name.removeprefix(REGISTRY + '/')}/tags/list")
        assert (status, json.loads(body)["tags"]) == (200, ["1"])
    finally:
        client.images.remove(f"{name}:1", force=True)
