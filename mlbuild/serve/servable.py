"""The servable interface every model is served through, the built-in ``sklearn`` flavor, and
loading a user's class from ``FILE.py:Class``.

A servable is any class with::

    def load(self, artifacts: dict[str, str]) -> None      # artifact name → file path
    def predict(self, inputs: dict[str, numpy.ndarray]) -> Mapping[str, array-like]

``predict`` gets every input of the signature, validated and converted to its datatype (at least
one row), and returns every output of the signature by name. The server calls it from one thread
at a time per process unless it runs with ``--threads N`` above 1; then it must be thread-safe.

Security: a joblib (pickle) file runs code when it is loaded. mlbuild loads artifacts only from
the project's own content-addressed cache, written by the project's own steps; never point
``model.artifacts`` at a file from somewhere you do not trust.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlbuild.errors import MlbuildError
from mlbuild.serve.signature import Signature


class Servable(Protocol):
    def load(self, artifacts: dict[str, str]) -> None: ...

    def predict(self, inputs: dict[str, Any]) -> Mapping[str, Any]: ...


class ServableError(MlbuildError):
    """The model cannot be loaded: a missing class, a file that is not a model, a bad signature."""


class SklearnServable:
    """The ``sklearn`` flavor: ``model`` is a fitted estimator in a joblib or skops file.

    One matrix input is passed to ``predict`` as it is; column inputs are stacked in the
    signature's order. The result is the signature's first output.
    """

    def __init__(self, signature: Signature) -> None:
        self.input_names = [t.name for t in signature.inputs]
        self.output_name = signature.outputs[0].name
        self.estimator: Any = None

    def load(self, artifacts: dict[str, str]) -> None:
        path = Path(artifacts["model"])
        if path.suffix == ".skops":
            self.estimator = _load_skops(path)
        else:
            import joblib

            self.estimator = joblib.load(path)
        if not callable(getattr(self.estimator, "predict", None)):
            raise ServableError(
                f"{path} holds a {type(self.estimator).__name__}, which has no predict(); "
                "the sklearn flavor needs a fitted estimator or pipeline"
            )

    def predict(self, inputs: dict[str, Any]) -> Mapping[str, Any]:
        if len(self.input_names) == 1:
            x = inputs[self.input_names[0]]
            if x.ndim == 1:
                x = x.reshape(-1, 1)
        else:
            x = np.column_stack([inputs[name] for name in self.input_names])
        return {self.output_name: self.estimator.predict(x)}


def _load_skops(path: Path) -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise ServableError(
            f"{path} is a skops file and skops is not installed; install it with "
            "`pip install skops`"
        ) from None
    untrusted = sio.get_untrusted_types(file=path)
    if untrusted:
        raise ServableError(
            f"{path} contains types skops does not trust by default: {', '.join(untrusted)}; "
            "save the model with joblib instead, or with only trusted types"
        )
    return sio.load(path)


def load_servable(
    *,
    root: Path,
    flavor: str | None,
    class_ref: str | None,
    artifacts: dict[str, str],
    signature: Signature,
) -> Servable:
    """A loaded servable: the built-in flavor, or the class ``FILE.py:Class`` under ``root``."""
    servable: Servable
    if flavor == "sklearn":
        servable = SklearnServable(signature)
    elif class_ref is not None:
        servable = _user_class(root, class_ref)()
    else:
        raise ServableError("the model section names neither a flavor nor a class")
    servable.load(dict(artifacts))
    return servable


def _user_class(root: Path, class_ref: str) -> Any:
    file, _, attr = class_ref.rpartition(":")
    path = root / file
    if not path.is_file():
        raise ServableError(f"model.class: {file} does not exist (in {root})")
    # Its folder goes on sys.path so it imports its neighbours (src/features.py) as training does.
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"mlbuild_servable_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    cls = getattr(module, attr, None)
    if cls is None:
        raise ServableError(f"model.class: {file} defines no '{attr}'")
    for method in ("load", "predict"):
        if not callable(getattr(cls, method, None)):
            raise ServableError(
                f"model.class: {class_ref} has no {method}() method; a servable class needs "
                "load(artifacts) and predict(inputs)"
            )
    return cls
