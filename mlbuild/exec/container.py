"""The container executor: a step's process runs inside a Docker image, through the Engine API.

What the step sees (details in :mod:`mlbuild.exec.sandbox`): the workspace at its own absolute
path, holding only the step's declared inputs, read-only; whatever it writes lands in a scratch
directory, from which its declared outputs are moved into the workspace once the container is
gone, and the rest is deleted. It runs as the invoking user (``uid:gid``), so its outputs are
the user's; another ``user`` may be configured only when mlbuild runs as root, which gives the
outputs back. Its environment is the step's declared ``env`` plus the host variables the
executor's ``env_passthrough`` names — never the whole host environment — and its secrets, which
travel outside the container's configuration (:mod:`mlbuild.exec.secret_files`). The network is
``none`` unless configured (``host`` reaches a package index here; ``bridge`` is Docker's
default network).

Containers carry labels — the workspace's path hash, the step, mlbuild's pid and process token —
so that :meth:`ContainerExecutor.leftovers` finds those of a killed run and removes them; after
a normal run none is left. The image enters the fingerprint by its id, resolved once per run
(:meth:`ContainerExecutor.identity`): re-tagging a new image under the same name re-runs the step.

The engine must be local (a unix socket, or TCP to this machine): the binds name this machine's
paths.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mlbuild.errors import MlbuildError, UsageError
from mlbuild.exec import docker_client, sandbox, secret_files
from mlbuild.exec.container_step import ContainerStep
from mlbuild.exec.executor import ProcessRequest, RunningStep
from mlbuild.paths import META_DIR
from mlbuild.store.liveness import is_gone, process_token

PURPOSE = "a container step"
NETWORKS = ("none", "host", "bridge")
LABEL = "dev.mlbuild"  # the prefix of every label mlbuild puts on a container
WORKSPACE_LABEL = f"{LABEL}.workspace"


@dataclass(frozen=True)
class ContainerOptions:
    """An executor definition's container options (validated in the recipe; checked again here
    because ``--executor`` and tests may hand them over directly)."""

    image: str
    network: str = "none"
    user: tuple[int, int] | None = None
    env_passthrough: tuple[str, ...] = ()

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> ContainerOptions:
        image = options.get("image")
        if not isinstance(image, str) or not image.strip():
            raise UsageError("a container executor needs an image: `image: NAME[:TAG]`")
        network = options.get("network") or "none"
        if network not in NETWORKS:
            raise UsageError(f"container network {network!r} is not one of {', '.join(NETWORKS)}")
        user = options.get("user")
        passthrough = options.get("env_passthrough") or ()
        return cls(image, str(network), _user(user), tuple(str(n) for n in passthrough))


class ContainerExecutor:
    """Runs each step in a new container of its image; see the module docstring."""

    name: ClassVar[str] = "container"

    def __init__(self) -> None:
        self._client: Any = None
        self._images: dict[str, str] = {}  # name → id, resolved once per run
        self._lock = threading.Lock()

    def identity(self, options: Mapping[str, Any]) -> dict[str, str]:
        """The image's id; and the names (never the values) of the host variables passed
        through, as the ``clean`` executor's. The network and the user are not in it: they
        decide whether a step can run, not what a step that ran made."""
        opts = ContainerOptions.parse(options)
        found = {"image": self._image(opts.image)}
        if opts.env_passthrough:
            found["env_passthrough"] = ",".join(sorted(set(opts.env_passthrough)))
        return found

    def start(self, request: ProcessRequest) -> RunningStep:
        opts = ContainerOptions.parse(request.options)
        image = self._image(opts.image)
        me = (os.getuid(), os.getgid())
        user = opts.user or me
        foreign = None if user == me else user
        if foreign is not None and me[0] != 0:
            raise UsageError(
                f"step '{request.step}': its container would run as user {user[0]}:{user[1]}, "
                f"but you are {me[0]}:{me[1]}; only root can run a step as another user (the "
                "files it writes must be given back to you): remove `user:` from the executor, "
                "or run mlbuild as that user"
            )
        workspace = Path(os.path.abspath(request.workspace))
        key = workspace_key(workspace)
        box = sandbox.prepare(workspace, request.step, request.inputs, request.outputs, foreign)
        secrets: secret_files.SecretFiles | None = None
        container: Any = None
        try:
            values = _secret_values(request)
            if values:
                secrets = secret_files.write(values, key, foreign)
            env = dict(request.env)
            for name in opts.env_passthrough:  # the host variables the recipe names, as they are
                if name in os.environ and name not in values:
                    env[name] = os.environ[name]
            argv = secrets.wrap(request.argv) if secrets else list(request.argv)
            labels = {
                WORKSPACE_LABEL: key,
                f"{LABEL}.step": request.step,
                f"{LABEL}.pid": str(os.getpid()),
                f"{LABEL}.process": process_token(),
                f"{LABEL}.image": opts.image,
                f"{LABEL}.scratch": str(box.scratch),
            }
            container = self._create(image, argv, workspace, env, box, secrets, opts, labels, user)
            stream = container.attach(stdout=True, stderr=True, stream=True, logs=False, demux=True)
            self._start(container, request.step)
        except BaseException:
            if container is not None:
                _quietly_remove(container)
            box.discard()
            if secrets is not None:
                secrets.remove()
            raise

        def cleanup() -> None:
            if secrets is not None:
                secrets.remove()
            # what the step left could not be deleted (a directory the image declared a volume
            # and the engine made root's): the outputs stand; the next run's sweep says so
            with contextlib.suppress(OSError):
                box.discard()

        return ContainerStep(
            container,
            stream,
            step=request.step,
            log_path=request.log_path,
            secrets=request.secrets,
            timeout=request.timeout,
            on_line=request.on_line,
            collect=lambda: box.collect(me if foreign is not None else None),
            cleanup=cleanup,
        )

    def leftovers(self, workspace: Path) -> list[str]:
        """Remove the containers a killed run of ``workspace`` left, and their scratch and
        secret files; call with the workspace's run lock held."""
        workspace = Path(os.path.abspath(workspace))
        key = workspace_key(workspace)
        stopped: list[str] = []
        keep: set[str] = set()
        try:
            client = self._connect()
        except MlbuildError:  # no SDK or no engine: then no container of ours runs either
            found = []
        else:
            try:
                found = client.containers.list(
                    all=True, filters={"label": f"{WORKSPACE_LABEL}={key}"}, ignore_removed=True
                )
            except Exception as exc:  # the engine answered, then failed: sweep nothing
                why = docker_client.explain(exc)
                return [f"cannot look for the containers of a killed run: {why}"]
        for container in found:
            labels = container.labels
            token = labels.get(f"{LABEL}.process", "")
            if token and not is_gone(token):  # its run lives (or is not on this machine)
                keep.add(labels.get(f"{LABEL}.scratch", ""))
                keep.update(m.get("Source", "") for m in container.attrs.get("Mounts", []))
                continue
            running = container.status == "running"
            _quietly_remove(container)
            step = labels.get(f"{LABEL}.step", "?")
            what = "stopped step" if running else "removed the container of step"
            stopped.append(
                f"{what} '{step}' (container {container.id[:12]}), left "
                f"{'running ' if running else ''}by an mlbuild run that was killed"
            )
        scratch_root = workspace / META_DIR / sandbox.SCRATCH_DIR
        folders = list(scratch_root.iterdir()) if scratch_root.is_dir() else []
        for folder in [*folders, *secret_files.left_behind(key, keep)]:
            if str(folder) in keep:
                continue
            try:
                sandbox.remove_tree(folder)
            except OSError as exc:
                stopped.append(
                    f"cannot delete {folder}, left by a container step: {exc.strerror}; "
                    f"delete it yourself (`sudo rm -rf {folder}`)"
                )
        return stopped

    def close(self) -> None:
        """The run is over: close the engine's connections (a next run resolves images anew)."""
        with self._lock:
            client, self._client = self._client, None
            self._images.clear()
        if client is not None:
            with contextlib.suppress(Exception):  # the engine went away: nothing to release
                client.close()

    def _connect(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = docker_client.connect(PURPOSE)
            return self._client

    def _image(self, name: str) -> str:
        client = self._connect()
        with self._lock:
            if name not in self._images:
                self._images[name] = docker_client.image_id(client, name)
            return self._images[name]

    def _create(
        self,
        image: str,
        argv: list[str],
        workspace: Path,
        env: dict[str, str],
        box: sandbox.Sandbox,
        secrets: secret_files.SecretFiles | None,
        opts: ContainerOptions,
        labels: dict[str, str],
        user: tuple[int, int],
    ) -> Any:
        docker = docker_client.docker_module(PURPOSE)
        mounts = [
            docker.types.Mount(b.target, b.source, type="bind", read_only=b.read_only)
            for b in box.binds
        ]
        if secrets is not None:
            mounts.append(
                docker.types.Mount(
                    secret_files.TARGET, str(secrets.folder), type="bind", read_only=True
                )
            )
        try:
            return self._connect().containers.create(
                image,
                entrypoint=argv,  # the step's command, whatever the image's entrypoint
                working_dir=str(workspace),
                environment=env,
                user=f"{user[0]}:{user[1]}",
                mounts=mounts,
                network_mode=opts.network,
                init=True,  # forwards signals to the command; the container ends with it
                labels=labels,
                log_config={"type": "none"},  # the engine keeps no copy of the output
                security_opt=["no-new-privileges"],
                stdin_open=False,
                tty=False,
            )
        except docker.errors.APIError as exc:
            raise MlbuildError(
                f"cannot create the container of the step: {docker_client.explain(exc)}"
            ) from None
        except docker.errors.DockerException as exc:
            raise docker_client.unreachable(exc) from None

    def _start(self, container: Any, step: str) -> None:
        docker = docker_client.docker_module(PURPOSE)
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise MlbuildError(
                f"cannot start the container of step '{step}': {docker_client.explain(exc)}"
            ) from None


def workspace_key(workspace: Path) -> str:
    """The label that marks a workspace's containers: a hash of its absolute path."""
    return hashlib.sha256(os.fsencode(os.path.abspath(workspace))).hexdigest()[:32]


def _secret_values(request: ProcessRequest) -> dict[str, str]:
    """The step's secrets: what the scheduler passes through, by name (empty values are unset)."""
    return {name: value for name, value in request.passthrough.items() if value}


def _user(raw: object) -> tuple[int, int] | None:
    if raw is None:
        return None
    text = str(raw)
    uid, sep, gid = text.partition(":")
    if not (uid.isdigit() and gid.isdigit() and sep):
        raise UsageError(f"container user {text!r} is not UID:GID (numbers, e.g. '1000:1000')")
    return int(uid), int(gid)


def _quietly_remove(container: Any) -> None:
    with contextlib.suppress(Exception):  # already gone; otherwise the next run's sweep retries
        container.remove(force=True, v=True)
