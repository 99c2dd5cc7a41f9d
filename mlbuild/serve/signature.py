"""Model signatures: the names, datatypes and shapes of a model's inputs and outputs.

A signature is declared in ``ml.yaml`` or inferred from a sample at training time and stored
beside the model as JSON (``model/signature.json``); the server checks every request against it.
Datatypes are the Open Inference Protocol's (``FP64``, ``INT64``, ``BYTES``, …).

Training code writes one with::

    from mlbuild.serve import infer_signature
    infer_signature({"petal_length": x[:, 2], ...}, {"label": model.predict(x)}).save(path)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlbuild import atomic

# Open Inference Protocol datatype ↔ numpy dtype. BYTES are Python str/bytes objects.
NUMPY_OF: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The protocol datatype of a numpy dtype (strings and objects are ``BYTES``)."""
    if dtype.kind in "OUS":
        return "BYTES"
    for name, candidate in NUMPY_OF.items():
        if candidate == dtype:
            return name
    raise ValueError(f"no Open Inference Protocol datatype for numpy dtype {dtype}")


@dataclass(frozen=True)
class Tensor:
    """One input or output: name, datatype, shape (``-1`` is any size; the first is the batch)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @property
    def is_column(self) -> bool:
        """A one-dimensional tensor: one value per row (a dataframe column)."""
        return len(self.shape) == 1


@dataclass(frozen=True)
class Signature:
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    @property
    def is_columnar(self) -> bool:
        """Every input is a column: requests may be tables (CSV, dataframe records)."""
        return all(t.is_column for t in self.inputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Signature:
        def tensors(items: Any) -> tuple[Tensor, ...]:
            return tuple(
                Tensor(str(t["name"]), str(t["datatype"]), tuple(int(d) for d in t["shape"]))
                for t in items
            )

        for side in ("inputs", "outputs"):
            for item in raw[side]:
                shape = item["shape"]
                # the first size is the batch; each is a size or -1 (any), as the recipe says
                if (
                    not isinstance(shape, list)
                    or not shape
                    or not all(type(d) is int and d >= -1 for d in shape)
                ):
                    raise ValueError(
                        f"tensor '{item['name']}': shape {shape!r} is not a list of sizes "
                        "(integers >= 0, or -1 for any size), the batch first"
                    )
        signature = cls(tensors(raw["inputs"]), tensors(raw["outputs"]))
        for side, found in (("inputs", signature.inputs), ("outputs", signature.outputs)):
            names = [t.name for t in found]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{side}: '{twice[0]}' is named twice")
        for tensor in (*signature.inputs, *signature.outputs):
            if tensor.datatype not in NUMPY_OF:
                raise ValueError(f"tensor '{tensor.name}': unknown datatype '{tensor.datatype}'")
        return signature

    def save(self, path: Path | str) -> None:
        """Write the signature as JSON (make ``path`` an output of the training step)."""
        atomic.write_text(Path(path), json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> Signature:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def infer_signature(inputs: Any, outputs: Any) -> Signature:
    """The signature of a model from a sample of its inputs and the outputs it gave.

    ``inputs`` and ``outputs`` are each a mapping of name → array-like (one tensor per name), or
    one array (named ``input-0`` / ``output-0``). The first dimension is the batch and becomes
    ``-1``; the others are kept.
    """
    return Signature(_tensors(inputs, "input-0"), _tensors(outputs, "output-0"))


def _tensors(sample: Any, default_name: str) -> tuple[Tensor, ...]:
    named = sample if isinstance(sample, Mapping) else {default_name: sample}
    found = []
    for name, value in named.items():
        array = np.asarray(value)
        if array.ndim == 0:
            raise ValueError(f"'{name}': expected a batch (an array with rows), got a scalar")
        found.append(Tensor(str(name), datatype_of(array.dtype), (-1, *array.shape[1:])))
    return tuple(found)
