"""The ``clean`` executor: a local process that sees no undeclared host variable, like ``env -i``.

A step that works only because of something in the invoking shell's environment (a
``PYTHONPATH``, a cloud profile, a ``CUDA_VISIBLE_DEVICES``) is not reproducible on another
machine or in CI. Run on ``clean``, its process gets only what the recipe declares — its ``env``,
its ``secrets``, mlbuild's ``MLBUILD_*`` variables — plus ``PATH`` and ``HOME`` (without them
hardly any program starts) and the host variables listed in ``executors.clean.env_passthrough``.
Everything else about running it (process groups, the watchdog, timeouts) is the local
executor's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from mlbuild.exec.executor import ProcessRequest
from mlbuild.exec.process import LocalExecutor

ALWAYS = ("PATH", "HOME")


class CleanExecutor(LocalExecutor):
    name: ClassVar[str] = "clean"

    def identity(self, options: Mapping[str, Any]) -> dict[str, str]:
        # which host variables it passes decides what the step can read: part of its inputs
        return {"env_passthrough": ",".join(sorted(_kept(options)))}

    def environment(self, request: ProcessRequest) -> dict[str, str]:
        host = {name: os.environ[name] for name in _kept(request.options) if name in os.environ}
        return {**host, **request.passthrough, **request.env}


def _kept(options: Mapping[str, Any]) -> list[str]:
    return [*ALWAYS, *(str(name) for name in options.get("env_passthrough", ()))]
