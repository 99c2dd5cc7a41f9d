"""The loaded model behind both protocols: converts request values to validated arrays, calls the
servable, and checks what it returns against the signature.

Every check raises :class:`InvalidInput` with a message that names the field; the server turns it
into a 400 response. The same object serves ``mlbuild predict`` in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlbuild.serve.convert import Locate, out_of_range, range_of, to_array
from mlbuild.serve.errors import InvalidInput
from mlbuild.serve.resolve import ModelSource, verify_artifacts
from mlbuild.serve.servable import Servable, ServableError, load_servable
from mlbuild.serve.signature import NUMPY_OF, Signature, Tensor

__all__ = ["InvalidInput", "ModelRuntime"]


@dataclass(frozen=True)
class _Spec:
    tensor: Tensor
    dtype: np.dtype[Any]


class ModelRuntime:
    """A servable with its signature; :meth:`predict` takes and returns arrays by name."""

    def __init__(self, source: ModelSource, servable: Servable, signature: Signature) -> None:
        self.name = source.name
        self.version = source.version
        self.platform = f"mlbuild-{source.flavor or 'python'}"
        self.signature = signature
        self.servable = servable
        self.inputs = {t.name: _spec(t) for t in signature.inputs}
        self.outputs = {t.name: _spec(t) for t in signature.outputs}

    @classmethod
    def load(cls, source: ModelSource) -> ModelRuntime:
        verify_artifacts(source)  # a pickle runs code: load only the bytes the step produced
        try:
            signature = Signature.from_json(source.signature)
        except (KeyError, TypeError, ValueError) as exc:
            raise ServableError(f"the model's signature is malformed: {exc}") from None
        servable = load_servable(
            root=Path(source.root),
            flavor=source.flavor,
            class_ref=source.class_ref,
            artifacts=source.artifacts,
            signature=signature,
        )
        return cls(source, servable, signature)

    def metadata(self) -> dict[str, Any]:
        """The Open Inference Protocol's model metadata."""
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.platform,
            "inputs": [t.to_json() for t in self.signature.inputs],
            "outputs": [t.to_json() for t in self.signature.outputs],
        }

    def array(
        self,
        name: str,
        values: Any,
        where: str,
        locate: Locate | None = None,
        *,
        may_hold_bools: bool = True,
        may_hold_nonfinite: bool = True,
        written: Any = None,
    ) -> np.ndarray[Any, Any]:
        """``values`` (JSON lists) as an array of input ``name``'s datatype, or InvalidInput
        naming the first value the datatype cannot hold (see :mod:`mlbuild.serve.convert`)."""
        spec = self.inputs[name]
        return to_array(
            values,
            spec.tensor.datatype,
            spec.dtype,
            where,
            locate,
            may_hold_bools=may_hold_bools,
            may_hold_nonfinite=may_hold_nonfinite,
            written=written,
        )

    def check(self, inputs: dict[str, np.ndarray[Any, Any]], where: dict[str, str]) -> None:
        """Every input present, with a shape its signature allows and one batch size."""
        missing = [name for name in self.inputs if name not in inputs]
        if missing:
            raise InvalidInput(
                f"missing input{'s' if len(missing) > 1 else ''} "
                + ", ".join(f"'{m}'" for m in missing)
                + f"; the model's inputs are: {', '.join(self.inputs)}"
            )
        rows = None
        for name, array in inputs.items():
            shape = self.inputs[name].tensor.shape
            if array.ndim >= 1 and array.shape[0] == 0:
                # A zero-row answer would need output shapes the signature cannot give (a -1
                # beyond the batch), and most models raise on zero rows: refuse it up front.
                raise InvalidInput(
                    f"{where[name]}: the batch is empty (0 rows); send at least one row"
                )
            if array.ndim != len(shape) or any(
                want not in (-1, got) for want, got in zip(shape, array.shape, strict=True)
            ):
                raise InvalidInput(
                    f"{where[name]}: shape {list(array.shape)} does not match the model's "
                    f"{list(shape)} (-1 is any size)"
                )
            if rows is None:
                rows = array.shape[0]
            elif array.shape[0] != rows:
                raise InvalidInput(
                    f"{where[name]}: {array.shape[0]} rows, but the other inputs have {rows}"
                )

    def predict(self, inputs: dict[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        """The servable's outputs for validated ``inputs``, as arrays of the signature's types.

        A servable that returns a missing output or values of the wrong type raises
        :class:`ServableError` (a bug in the model's code, not the client's).
        """
        produced = self.servable.predict(inputs)
        outputs = {}
        for name, spec in self.outputs.items():
            if name not in produced:
                raise ServableError(
                    f"the model's predict() returned no output '{name}' (it returned: "
                    f"{', '.join(map(str, produced)) or 'nothing'})"
                )
            array = np.asarray(produced[name])
            if spec.dtype.kind == "O":
                array = array.astype(object)
            elif array.dtype != spec.dtype:
                if array.dtype.kind not in "biuf" or out_of_range(array, spec.dtype) is not None:
                    raise ServableError(
                        f"the model's predict() returned output '{name}' as {array.dtype} "
                        f"values that {range_of(spec.tensor.datatype, spec.dtype)} cannot hold"
                    )
                array = array.astype(spec.dtype)
            outputs[name] = array
        return outputs


def _spec(tensor: Tensor) -> _Spec:
    return _Spec(tensor, NUMPY_OF[tensor.datatype])
