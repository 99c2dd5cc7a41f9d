"""Servable models and the prediction server (Open Inference Protocol v2, MLflow's formats,
Prometheus metrics), and batch prediction with the same code path.

Training code imports :func:`infer_signature` from here; it needs numpy, not the server stack.
Everything else loads on first use (PEP 562), so ``import mlbuild.serve`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlbuild.serve.batch import predict_file as predict_file
    from mlbuild.serve.errors import InvalidInput as InvalidInput
    from mlbuild.serve.resolve import ModelSource as ModelSource
    from mlbuild.serve.resolve import NotBuiltError as NotBuiltError
    from mlbuild.serve.resolve import resolve_model as resolve_model
    from mlbuild.serve.runtime import ModelRuntime as ModelRuntime
    from mlbuild.serve.servable import Servable as Servable
    from mlbuild.serve.servable import ServableError as ServableError
    from mlbuild.serve.server import ServerOptions as ServerOptions
    from mlbuild.serve.server import serve as serve
    from mlbuild.serve.signature import Signature as Signature
    from mlbuild.serve.signature import Tensor as Tensor
    from mlbuild.serve.signature import infer_signature as infer_signature

_LAZY = {
    "predict_file": "batch",
    "ModelSource": "resolve",
    "NotBuiltError": "resolve",
    "resolve_model": "resolve",
    "InvalidInput": "errors",
    "ModelRuntime": "runtime",
    "Servable": "servable",
    "ServableError": "servable",
    "ServerOptions": "server",
    "serve": "server",
    "Signature": "signature",
    "Tensor": "signature",
    "infer_signature": "signature",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlbuild.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mlbuild.serve.{module}"), name)


__all__ = [
    "InvalidInput",
    "ModelRuntime",
    "ModelSource",
    "NotBuiltError",
    "Servable",
    "ServableError",
    "ServerOptions",
    "Signature",
    "Tensor",
    "infer_signature",
    "predict_file",
    "resolve_model",
    "serve",
]
