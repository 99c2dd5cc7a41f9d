"""Secrets of a container step: exactly the value in the process's environment, masked in its
output, and never in the container's configuration (``docker inspect``) or on disk."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlbuild.exec.container import ContainerExecutor, workspace_key
from mlbuild.exec.secret_files import base
from mlbuild.masking import Secrets
from tests.docker_engine import Engine
from tests.exec.container_box import Box, new_box

pytestmark = pytest.mark.slow

VALUES = {
    "API_TOKEN": "s3cr3t-token-9f8e7d",
    "PEM_KEY": "-----BEGIN KEY-----\nAAAAline-one-abc\nBBBBline-two-def\n-----END KEY-----\n\n",
    "SHELLISH": 'it\'s "quoted" $HOME `id` $(id) \\n ;|& *',
    "PADDED": "  spaces around  ",
}

CHECK = """\
import hashlib, json, os
expected = json.loads(os.environ["EXPECTED"])
for name, digest in sorted(expected.items()):
    got = hashlib.sha256(os.environb[name.encode()]).hexdigest()
    print(name, "exact" if got == digest else "DIFFERENT")
print("token:", os.environ["API_TOKEN"])
print("files:", sorted(os.listdir("/run/mlbuild-secrets")))
"""


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    yield from new_box(tmp_path)


def test_a_secret_reaches_the_process_exactly_and_nowhere_else(
    docker_engine: Engine, box: Box
) -> None:
    expected = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in VALUES.items()}
    request = box.request(
        ["python3", "-c", CHECK],
        env={"EXPECTED": json.dumps(expected)},
        passthrough=VALUES,
        secrets=Secrets.from_env(VALUES, VALUES),
    )
    mine = f"mlbuild-secrets-{workspace_key(box.root)}-"
    step = ContainerExecutor().start(request)
    # while the container exists: its configuration, labels and mounts hold no value
    [container] = docker_engine.containers_of(box.root)
    inspected = json.dumps(docker_engine.client.api.inspect_container(container.id))
    for name, value in VALUES.items():
        for piece in [value.strip(), *value.splitlines()]:
            if len(piece.strip()) >= 8:
                assert piece.strip() not in inspected, name
    assert [e for e in container.attrs["Config"]["Env"] if e.startswith(tuple(VALUES))] == []
    [folder] = [name for name in os.listdir(base()) if name.startswith(mine)]
    assert (os.stat(Path(base()) / folder).st_mode & 0o777) == 0o700
    result = step.wait()

    assert result.returncode == 0, box.log()
    assert box.lines == [
        "API_TOKEN exact",
        "PADDED exact",
        "PEM_KEY exact",
        "SHELLISH exact",
        "token: ***",
        "files: ['API_TOKEN', 'PADDED', 'PEM_KEY', 'SHELLISH']",
    ]
    assert VALUES["API_TOKEN"] not in box.log()
    assert [n for n in os.listdir(base()) if n.startswith(mine)] == []  # gone with the container


def test_a_step_without_secrets_runs_its_command_as_it_is(docker_engine: Engine, box: Box) -> None:
    request = box.request(["python3", "-c", "print('plain')"])
    step = ContainerExecutor().start(request)
    [container] = docker_engine.containers_of(box.root)
    assert container.attrs["Config"]["Entrypoint"] == ["python3", "-c", "print('plain')"]
    assert not any(m["Destination"] == "/run/mlbuild-secrets" for m in container.attrs["Mounts"])
    assert step.wait().returncode == 0


def test_a_secret_printed_in_pieces_is_masked_and_bytes_that_are_not_utf8_are_replaced(
    docker_engine: Engine, box: Box
) -> None:
    """Half a secret on stdout, the whole secret on stderr, then stdout's other half: each
    stream's line is joined before it is masked, and lines keep their order of arrival."""
    token = VALUES["API_TOKEN"]
    script = (
        "import os, sys, time\n"
        "t = os.environ['API_TOKEN']\n"
        "sys.stdout.write('a ' + t[:6]); sys.stdout.flush(); time.sleep(0.3)\n"
        "sys.stderr.write(t + '\\n'); sys.stderr.flush(); time.sleep(0.3)\n"
        "sys.stdout.write(t[6:] + ' b\\n'); sys.stdout.flush()\n"
        "sys.stdout.buffer.write(b'bad \\xff\\xfe bytes\\n'); sys.stdout.flush()\n"
        "sys.stderr.write('no newline at the end')\n"
    )
    request = box.request(
        ["python3", "-c", script],
        passthrough={"API_TOKEN": token},
        secrets=Secrets.from_env(["API_TOKEN"], {"API_TOKEN": token}),
    )
    assert ContainerExecutor().start(request).wait().returncode == 0, box.log()
    assert box.lines == ["***", "a *** b", "bad \ufffd\ufffd bytes", "no newline at the end"]
    assert token not in box.log()
    assert token[:6] not in box.log()
