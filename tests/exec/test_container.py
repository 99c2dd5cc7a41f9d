"""The container executor on a real Docker engine: what a step sees, what comes back, who owns it.

Library tier: each test hands the executor a request, as the scheduler does, and runs a python3
step in ``mlbuild-base:bookworm``. The CLI tier is tests/exec/test_container_cli.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlbuild.errors import EXIT_USAGE, MlbuildError
from mlbuild.exec.container import ContainerExecutor
from mlbuild.exec.docker_client import EngineError
from mlbuild.exec.executor import ProcessRequest
from tests.conftest import CHILD_ENV, write_tree
from tests.docker_engine import BASE_IMAGE, Engine, EngineProxy
from tests.exec.container_box import Box, new_box

pytestmark = pytest.mark.slow


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    yield from new_box(tmp_path)


def run(request: ProcessRequest, executor: ContainerExecutor | None = None) -> Any:
    return (executor or ContainerExecutor()).start(request).wait()


def tree(root: Path) -> set[str]:
    """Every path under ``root`` but mlbuild's own, relative."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not str(p.relative_to(root)).startswith(".mlbuild")
    }


PREPARE = """\
import os
rows = open("data/raw.csv").read().splitlines()
with open("model.txt.tmp", "w") as out:        # written aside, then renamed: a common idiom
    out.write(str(len(rows)))
os.replace("model.txt.tmp", "model.txt")
os.makedirs("data/prepared", exist_ok=True)
for i, row in enumerate(rows):
    open(f"data/prepared/{i}.csv", "w").write(row.upper())
open("scratch-note.txt", "w").write("not an output")
os.makedirs("data/other", exist_ok=True)
open("data/other/x", "w").write("not an output either")
open("/tmp/outside", "w").write("in the container only")
print("wrote", len(rows), "rows")
"""


def test_a_step_reads_its_inputs_and_only_its_declared_outputs_come_back(
    docker_engine: Engine, box: Box
) -> None:
    box.gen({"src": {"prepare.py": PREPARE}, "data": {"raw.csv": "a\nb\nc\n"}})
    result = run(
        box.request(
            ["python3", "src/prepare.py"],
            inputs=["src/prepare.py", "data/raw.csv"],
            outputs=["model.txt", "data/prepared/"],
        )
    )

    assert (result.returncode, result.timed_out, result.stopped, result.cut) == (
        0,
        False,
        False,
        False,
    )
    assert box.lines == ["wrote 3 rows"]
    assert box.log() == "wrote 3 rows\n"
    assert (box.root / "model.txt").read_text() == "3"
    assert sorted(p.name for p in (box.root / "data/prepared").iterdir()) == [
        "0.csv",
        "1.csv",
        "2.csv",
    ]
    # nothing else the step wrote reached the workspace, and no temporary file is left
    assert tree(box.root) == {
        "src", "src/prepare.py", "data", "data/raw.csv", "model.txt",
        "data/prepared", "data/prepared/0.csv", "data/prepared/1.csv", "data/prepared/2.csv",
    }  # fmt: skip
    assert list((box.root / ".mlbuild" / "containers").iterdir()) == []
    assert docker_engine.containers_of(box.root) == []


def test_outputs_belong_to_the_invoking_user(docker_engine: Engine, box: Box) -> None:
    box.gen({"a.txt": "x"})
    result = run(
        box.request(
            "mkdir -p d/e && cp a.txt d/e/b.txt && cp a.txt f.txt && id -u > uid.txt",
            inputs=["a.txt"],
            outputs=["d", "f.txt", "uid.txt"],
        )
    )
    assert result.returncode == 0, box.log()
    assert (box.root / "uid.txt").read_text().strip() == str(os.getuid())
    for path in ("d", "d/e", "d/e/b.txt", "f.txt"):
        info = (box.root / path).stat()
        assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid()), path


def test_an_undeclared_file_is_not_there_and_inputs_are_read_only(
    docker_engine: Engine, box: Box
) -> None:
    box.gen({"declared.txt": "yes", "undeclared.txt": "no", "src": {"other.py": ""}})
    script = (
        "import os\n"
        "print(sorted(os.listdir('.')))\n"
        "print(os.path.exists('undeclared.txt'), os.path.exists('src/other.py'))\n"
        "try:\n    open('declared.txt', 'a')\nexcept OSError as e:\n    print(e.strerror)\n"
        "try:\n    os.unlink('declared.txt')\nexcept OSError as e:\n    print(e.strerror)\n"
    )
    result = run(box.request(["python3", "-c", script], inputs=["declared.txt"]))
    assert result.returncode == 0, box.log()
    assert box.lines == [
        "['declared.txt']",
        "False False",
        "Read-only file system",
        "Device or resource busy",  # a mount point: not removable either
    ]
    assert (box.root / "declared.txt").read_text() == "yes"


def test_a_failing_command_gives_its_exit_code(docker_engine: Engine, box: Box) -> None:
    result = run(box.request("echo about to fail; exit 3"))
    assert (result.returncode, result.timed_out, result.stopped) == (3, False, False)
    assert box.log() == "about to fail\n"
    assert docker_engine.containers_of(box.root) == []


def test_a_command_missing_from_the_image_fails_like_a_missing_program(
    docker_engine: Engine, box: Box
) -> None:
    result = run(box.request(["no-such-program", "x"]))
    assert result.returncode == 127
    assert "exec no-such-program failed: No such file or directory" in box.log()


def test_an_output_inside_an_input_directory(docker_engine: Engine, box: Box) -> None:
    """``deps: [data]``, ``outs: [data/prepared]``: the rest of data/ is seen read-only."""
    box.gen({"data": {"raw.csv": "r\n", "more": {"m.csv": "m\n"}}})
    os.symlink("raw.csv", box.root / "data/link.csv")
    command = (
        "cat data/raw.csv data/more/m.csv data/link.csv && mkdir data/prepared && "
        "cat data/raw.csv > data/prepared/p.csv && { (echo x > data/raw.csv) 2>/dev/null || "
        "echo read-only; }"
    )
    result = run(box.request(command, inputs=["data"], outputs=["data/prepared"]))
    assert result.returncode == 0, box.log()
    assert box.lines == ["r", "m", "r", "read-only"]
    assert (box.root / "data/prepared/p.csv").read_text() == "r\n"
    assert (box.root / "data/raw.csv").read_text() == "r\n"


def test_persisted_outputs_start_from_their_previous_content(
    docker_engine: Engine, box: Box
) -> None:
    box.gen({"ckpt": {"epoch": "1"}, "count.txt": "1"})
    command = (
        "e=$(cat ckpt/epoch); echo $((e + 1)) > ckpt/epoch; "
        "c=$(cat count.txt); echo $((c + 10)) > count.txt.new && mv count.txt.new count.txt"
    )
    for _ in range(2):
        result = run(box.request(command, outputs=["ckpt/", "count.txt"]))
        assert result.returncode == 0, box.log()
    assert (box.root / "ckpt/epoch").read_text() == "3\n"
    assert (box.root / "count.txt").read_text() == "21\n"


def test_a_symlinked_parent_in_the_scratch_cannot_move_anything_outside(
    docker_engine: Engine, box: Box, tmp_path: Path
) -> None:
    """The step makes ``out``'s parent a link to ``/``: the move would read ``/x`` of the host."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret.txt").write_text("host file")
    command = f"rmdir sub && ln -s {victim} sub"  # sub/secret.txt: the host file, from outside
    result = run(box.request(command, outputs=["sub/secret.txt"]))
    assert result.returncode == 0, box.log()
    assert (victim / "secret.txt").read_text() == "host file"
    assert not os.path.lexists(box.root / "sub/secret.txt")


def test_env_is_the_steps_own_plus_named_passthrough(
    docker_engine: Engine, box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    monkeypatch.setenv("HOST_ONLY", "leak")
    monkeypatch.delenv("NOT_SET", raising=False)
    script = (
        "import os, json\n"
        "print(json.dumps({k: v for k, v in sorted(os.environ.items()) "
        "if k not in ('PATH', 'HOSTNAME', 'HOME', 'LC_CTYPE')}))"
    )
    result = run(
        box.request(
            ["python3", "-c", script],
            env={"DECLARED": "1"},
            options={"env_passthrough": ["HTTP_PROXY", "NOT_SET"]},
        )
    )
    assert result.returncode == 0, box.log()
    assert json.loads(box.lines[0]) == {
        "DECLARED": "1",
        "HTTP_PROXY": "http://proxy:3128",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.mark.parametrize(
    ("network", "interfaces"), [(None, ["lo"]), ("none", ["lo"]), ("bridge", ["eth0", "lo"])]
)
def test_the_network_is_none_unless_configured(
    docker_engine: Engine, box: Box, network: str | None, interfaces: list[str]
) -> None:
    options = {} if network is None else {"network": network}
    result = run(box.request("ls /sys/class/net", options=options))
    assert result.returncode == 0, box.log()
    assert sorted(box.lines) == interfaces


def test_a_step_is_done_when_its_command_exits(docker_engine: Engine, box: Box) -> None:
    """What it leaves running goes with the container; one that closes its output still counts."""
    result = run(box.request("sleep 300 & exec >/dev/null 2>&1; sleep 1; echo done > out.txt",
                             outputs=["out.txt"]))  # fmt: skip
    assert (result.returncode, result.cut) == (0, False)
    assert (box.root / "out.txt").read_text() == "done\n"


def test_a_timeout_stops_the_container(docker_engine: Engine, box: Box) -> None:
    result = run(box.request("echo started; sleep 60", timeout=1))
    assert (result.timed_out, result.stopped) == (True, False)
    assert result.returncode != 0
    assert box.lines == ["started"]
    assert docker_engine.containers_of(box.root) == []


def test_stop_sends_sigterm_then_removes_the_container(docker_engine: Engine, box: Box) -> None:
    started = threading.Event()
    box_lines: list[str] = []

    def on_line(line: str) -> None:
        box_lines.append(line)
        started.set()

    request = box.request(
        "trap 'echo got TERM; exit 143' TERM; echo ready; while :; do sleep 0.1; done"
    )
    step = ContainerExecutor().start(_with(request, on_line=on_line))
    assert step.ident.startswith("container ")
    threading.Thread(target=lambda: started.wait(60) and step.stop()).start()
    result = step.wait()
    assert (result.stopped, result.timed_out, result.returncode) == (True, False, 143)
    assert box_lines == ["ready", "got TERM"]
    assert docker_engine.containers_of(box.root) == []


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace_period(
    docker_engine: Engine, box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlbuild.exec import container_step

    monkeypatch.setattr(container_step, "GRACE_SECONDS", 0.5)
    step = ContainerExecutor().start(box.request("trap '' TERM; echo ready; sleep 60"))
    step.stop()
    result = step.wait()
    assert result.stopped
    assert result.returncode == 137  # 128 + SIGKILL, as the container's init reports it


def test_abandon_removes_the_container_at_once(docker_engine: Engine, box: Box) -> None:
    step = ContainerExecutor().start(box.request("sleep 60", outputs=["x"]))
    step.abandon()
    assert docker_engine.containers_of(box.root) == []
    assert list((box.root / ".mlbuild" / "containers").iterdir()) == []


def test_the_image_is_resolved_once_per_executor(docker_engine: Engine) -> None:
    with docker_engine.image_name() as name:
        executor = ContainerExecutor()
        first = executor.identity({"image": name})
        assert first == {"image": docker_engine.base_id}
        changed = docker_engine.variant(name, "identity")
        assert executor.identity({"image": name}) == first  # one run sees one image
        assert ContainerExecutor().identity({"image": name}) == {"image": changed}
        docker_engine.client.images.remove(changed, force=True)


def test_the_identity_holds_the_passed_through_names_but_not_their_values(
    docker_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    options = {"image": BASE_IMAGE, "network": "host", "env_passthrough": ["TZ", "HTTP_PROXY"]}
    assert ContainerExecutor().identity(options) == {
        "image": docker_engine.base_id,
        "env_passthrough": "HTTP_PROXY,TZ",
    }


def test_a_missing_image_is_named_with_the_fix(docker_engine: Engine) -> None:
    with pytest.raises(EngineError) as caught:
        ContainerExecutor().identity({"image": "mlbuild-test-missing:nope"})
    assert caught.value.exit_code == EXIT_USAGE
    assert caught.value.message == (
        "image 'mlbuild-test-missing:nope' is not in the Docker engine at "
        f"{os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')}"
        f"{' (DOCKER_HOST)' if os.environ.get('DOCKER_HOST') else ''}; pull it (`docker pull "
        "mlbuild-test-missing:nope`) or build it (`docker build -t mlbuild-test-missing:nope .`)"
    )


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("unix://{tmp}/dead.sock", "no socket there"),
        ("unix://{tmp}/refusing.sock", "connection refused"),
    ],
)
def test_no_engine_is_named_with_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, why: str
) -> None:
    import socket

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "refusing.sock"))  # bound, never listening: refused
    address = host.format(tmp=tmp_path)
    monkeypatch.setenv("DOCKER_HOST", address)
    with pytest.raises(EngineError) as caught:
        ContainerExecutor().identity({"image": BASE_IMAGE})
    listener.close()
    assert caught.value.exit_code == EXIT_USAGE
    assert caught.value.message == (
        f"cannot reach the Docker engine at {address} (DOCKER_HOST): {why}; start it (`sudo "
        "systemctl start docker`, or `sudo dockerd &`) or point DOCKER_HOST at a running engine"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image": ""}, "a container executor needs an image: `image: NAME[:TAG]`"),
        (
            {"image": BASE_IMAGE, "network": "wide"},
            "container network 'wide' is not one of none, host, bridge",
        ),
        (
            {"image": BASE_IMAGE, "user": "root"},
            "container user 'root' is not UID:GID (numbers, e.g. '1000:1000')",
        ),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(MlbuildError) as caught:
        ContainerExecutor().identity(options)
    assert (caught.value.message, caught.value.exit_code) == (message, EXIT_USAGE)


# -- another user ---------------------------------------------------------------------------------

AS_USER = """\
import json, os, sys
from pathlib import Path
from mlbuild.exec.executor import ProcessRequest
from mlbuild.exec.container import ContainerExecutor
from mlbuild.errors import MlbuildError
from mlbuild.masking import Secrets

root = Path(sys.argv[1])
options = json.loads(sys.argv[2])
request = ProcessRequest(
    "s",
    ["/bin/sh", "-c", "id -u > who.txt && cat src/in.txt > src/made.txt && "
     "echo scratch > lib/pkg/tmp && mkdir -p d junk && echo x > d/f && chmod 0 d junk"],
    root,
    {}, {}, ["src/in.txt", "lib/pkg/mod.txt"], ["who.txt", "src/made.txt", "d"], root / "s.log",
    Secrets(), None, print,
    {"image": "mlbuild-base:bookworm", **options},
)
try:
    print("exit", ContainerExecutor().start(request).wait().returncode)
except MlbuildError as exc:
    print("error", exc.message)
"""


def run_as(uid: int, root: Path, options: dict[str, Any]) -> str:
    """Run :data:`AS_USER` as ``uid`` (with the docker group, as a user of the engine is)."""
    import grp

    docker_gid = grp.getgrnam("docker").gr_gid
    done = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", f"--groups={docker_gid}",
         sys.executable, "-c", AS_USER, str(root), json.dumps(options)],
        env={**os.environ, **CHILD_ENV, "HOME": str(root)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def shared_dir(tmp_path: Path) -> Callable[[int], Path]:
    """A workspace another uid can write (pytest's tmp dirs are root's own)."""
    import shutil
    import tempfile

    made: list[Path] = []

    def make(uid: int) -> Path:
        root = Path(tempfile.mkdtemp(prefix="mlbuild-container-"))
        os.chown(root, uid, uid)
        made.append(root)
        return root

    yield make  # type: ignore[misc]
    for root in made:
        shutil.rmtree(root, ignore_errors=True)


needs_root = pytest.mark.skipif(os.getuid() != 0, reason="switching users needs root")


@needs_root
def test_a_user_who_is_not_root_gets_outputs_they_own(
    docker_engine: Engine, shared_dir: Callable[[int], Path]
) -> None:
    root = shared_dir(4321)
    write_tree(root, {"src": {"in.txt": "input"}, "lib": {"pkg": {"mod.txt": ""}}})
    for folder in ("src", "lib", "lib/pkg"):
        os.chown(root / folder, 4321, 4321)  # the user's own workspace
    assert run_as(4321, root, {}) == "exit 0"
    assert (root / "who.txt").read_text() == "4321\n"
    assert (root / "src/made.txt").read_text() == "input"  # beside an input: its mount point
    os.chmod(root / "d", 0o755)  # the step took its own permission away; root can look
    for path in ("who.txt", "src/made.txt", "d", "d/f"):
        assert (root / path).stat().st_uid == 4321, path
    assert list((root / ".mlbuild" / "containers").iterdir()) == []  # cleaned despite chmod 0


@needs_root
def test_a_user_who_is_not_root_cannot_run_a_step_as_someone_else(
    docker_engine: Engine, shared_dir: Callable[[int], Path]
) -> None:
    root = shared_dir(4321)
    assert run_as(4321, root, {"user": "1000:1000"}) == (
        "error step 's': its container would run as user 1000:1000, but you are 4321:4321; only "
        "root can run a step as another user (the files it writes must be given back to you): "
        "remove `user:` from the executor, or run mlbuild as that user"
    )
    assert docker_engine.containers_of(root) == []


@needs_root
def test_root_may_run_a_step_as_another_user_and_gets_the_outputs_back(
    docker_engine: Engine, box: Box
) -> None:
    box.gen({"ckpt": {"old": "1"}})
    result = run(
        box.request(
            "id -u > who.txt && touch ckpt/new && mkdir d && touch d/f",
            outputs=["who.txt", "d", "ckpt"],
            options={"user": "1234:1234"},
        )
    )
    assert result.returncode == 0, box.log()
    assert (box.root / "who.txt").read_text() == "1234\n"
    for path in ("who.txt", "d", "d/f", "ckpt", "ckpt/old", "ckpt/new"):
        assert (box.root / path).stat().st_uid == 0, path


def _with(request: ProcessRequest, **changes: Any) -> ProcessRequest:
    from dataclasses import replace

    return replace(request, **changes)


def test_prelude_is_plain_posix_sh() -> None:
    """The secrets prelude runs in dash (Debian's /bin/sh), with no external program."""
    from mlbuild.exec.secret_files import PRELUDE

    assert "$(" not in PRELUDE and "`" not in PRELUDE
    assert textwrap.dedent(PRELUDE) == PRELUDE


def test_an_input_linked_inside_the_workspace_is_seen_through_its_link(
    docker_engine: Engine, box: Box
) -> None:
    box.gen({"data": {"v2": {"rows.csv": "v2\n"}}})
    os.symlink("v2", box.root / "data/current")
    result = run(box.request("cat data/current/rows.csv", inputs=["data/current"]))
    assert (result.returncode, box.lines) == (0, ["v2"])


def test_an_input_that_leads_out_of_the_workspace_is_refused(
    docker_engine: Engine, box: Box, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, box.root / "data")
    with pytest.raises(MlbuildError) as caught:
        ContainerExecutor().start(box.request("ls data", inputs=["data"]))
    assert caught.value.message == (
        f"input data now leads outside the workspace (to {outside}); a container step sees "
        "only the workspace's own files"
    )
    assert docker_engine.containers_of(box.root) == []
    assert list((box.root / ".mlbuild" / "containers").iterdir()) == []


def test_the_params_file_is_reachable_through_mlbuild_params(
    docker_engine: Engine, box: Box
) -> None:
    box.gen({".mlbuild": {"params": {"s.json": '{"lr": 0.1}'}}})
    params = str(box.root / ".mlbuild/params/s.json")
    script = "import json, os; print(json.load(open(os.environ['MLBUILD_PARAMS']))['lr'])"
    result = run(
        box.request(
            ["python3", "-c", script],
            inputs=[".mlbuild/params/s.json"],
            env={"MLBUILD_PARAMS": params},
        )
    )
    assert (result.returncode, box.lines) == (0, ["0.1"]), box.log()


def test_two_steps_of_one_workspace_run_at_once_apart(docker_engine: Engine, box: Box) -> None:
    """Each sees its own scratch: neither sees the other's files, each gets its own outputs."""
    box.gen({"a.txt": "A", "b.txt": "B"})
    executor = ContainerExecutor()
    command = "sleep 1; ls; cat {0}.txt > {0}.out"
    steps = [
        executor.start(box.request(command.format(n), inputs=[f"{n}.txt"], outputs=[f"{n}.out"],
                                   step=n))
        for n in ("a", "b")
    ]  # fmt: skip
    assert len(docker_engine.containers_of(box.root)) == 2
    results = [step.wait() for step in steps]
    executor.close()
    assert [r.returncode for r in results] == [0, 0]
    assert (box.log("a"), box.log("b")) == ("a.txt\n", "b.txt\n")
    assert ((box.root / "a.out").read_text(), (box.root / "b.out").read_text()) == ("A", "B")
    assert docker_engine.containers_of(box.root) == []


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ([], ["../escape"], "'../escape' is outside the workspace; use a path inside it"),
        ([], ["/tmp/escape"], "'/tmp/escape' is outside the workspace; use a path inside it"),
        (["a/../../x"], [], "'a/../../x' is outside the workspace; use a path inside it"),
        ([], [".mlbuild/x"], "'.mlbuild/x' is inside .mlbuild; a step cannot write there"),
        ([], [".git/hooks"], "'.git/hooks' is inside .git; a step cannot write there"),
        (["f.txt"], ["f.txt/out"],
         "cannot run in a container: output f.txt/out lies under input f.txt, which is not a "
         "directory"),
    ],
)  # fmt: skip
def test_a_request_naming_paths_outside_the_workspace_is_refused_before_anything_runs(
    docker_engine: Engine, box: Box, inputs: list[str], outputs: list[str], message: str
) -> None:
    """The scheduler checks the recipe's paths; the executor checks again what it binds."""
    box.gen({"f.txt": "x"})
    with pytest.raises(MlbuildError) as caught:
        ContainerExecutor().start(box.request("touch ../escape", inputs=inputs, outputs=outputs))
    assert caught.value.message == message
    assert not (box.root.parent / "escape").exists()
    assert docker_engine.containers_of(box.root) == []
    scratch = box.root / ".mlbuild" / "containers"
    assert not scratch.exists() or list(scratch.iterdir()) == []


def test_a_step_name_is_only_a_label_never_a_path(docker_engine: Engine, box: Box) -> None:
    request = box.request("echo x > o", outputs=["o"], step="../../../up")
    step = ContainerExecutor().start(_with(request, log_path=box.root / "up.log"))
    [container] = docker_engine.containers_of(box.root)
    scratch = Path(container.labels["dev.mlbuild.scratch"])
    assert container.labels["dev.mlbuild.step"] == "../../../up"
    assert scratch.parent == box.root / ".mlbuild" / "containers"
    assert scratch.name.startswith(".._.._.._up.")
    assert step.wait().returncode == 0
    assert (box.root / "o").read_text() == "x\n"


def test_close_releases_the_engine_and_a_next_run_resolves_the_image_anew(
    docker_engine: Engine,
) -> None:
    with docker_engine.image_name() as name:
        executor = ContainerExecutor()
        assert executor.identity({"image": name}) == {"image": docker_engine.base_id}
        changed = docker_engine.variant(name, "close")
        executor.close()
        executor.close()  # twice is fine
        assert executor.identity({"image": name}) == {"image": changed}
        executor.close()
        docker_engine.client.images.remove(changed, force=True)


def test_an_engine_lost_while_a_step_runs_fails_it_with_what_happened(
    docker_engine: Engine, box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = EngineProxy(tmp_path / "engine.sock")
    monkeypatch.setenv("DOCKER_HOST", proxy.address)
    request = box.request("echo started; sleep 60", outputs=["o"])
    step = ContainerExecutor().start(_with(request, on_line=lambda _: proxy.cut()))
    with pytest.raises(EngineError) as caught:
        step.wait()
    assert caught.value.message == (
        f"lost the Docker engine at {proxy.address} (DOCKER_HOST) while step 's' ran "
        f"({step.ident}): it closed the connection; if the engine still runs the container, "
        "the next `mlbuild run` here removes it"
    )
    assert list((box.root / ".mlbuild" / "containers").iterdir()) == []
    # the engine itself did not die: the container runs on (the box's teardown removes it)
    [container] = docker_engine.containers_of(box.root)
    assert container.status == "running"
