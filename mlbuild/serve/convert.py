"""Request values → arrays of a tensor's datatype, refusing every value the datatype cannot hold
instead of letting numpy wrap or overflow it (300 as UINT8 is not 44; 1e39 as FP32 is not inf).

The rules, the same for every protocol and format:

- integer datatypes take integers within their range; a boolean, a string, a number written with
  a fraction or an exponent (``1.0``, ``2e3``) or an integer out of range is refused;
- float datatypes take integers and floats; a value beyond the datatype's largest magnitude is
  refused (values too small for FP16/FP32 round towards zero, as any float conversion does);
- NaN and ±infinity are refused for every float input: JSON cannot carry them, so a CSV cell or a
  binary tensor that holds one is refused too, and every format means the same thing;
- BOOL takes booleans only, BYTES strings only.

A refusal raises :class:`InvalidInput` naming the first offending value by its location, made by a
``locate`` function from the value's index (``inputs[0] ('x').data[3]``, ``csv line 4 column 'x'``).
The checks cost one vectorised pass over the array on the way in; only a refusal walks the values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlbuild.serve.errors import InvalidInput

Locate = Callable[[tuple[int, ...]], str]

_KIND_NAMES = {
    "b": "booleans",
    "i": "integers",
    "u": "integers",
    "f": "floating-point numbers",
    "U": "strings",
    "S": "strings",
}


def json_path(where: str) -> Locate:
    """``where[i][j]``: the location of a value in nested JSON lists."""
    return lambda index: where + "".join(f"[{i}]" for i in index)


def to_array(
    values: Any,
    datatype: str,
    dtype: np.dtype[Any],
    where: str,
    locate: Locate | None = None,
    *,
    may_hold_bools: bool = True,
    may_hold_nonfinite: bool = True,
    written: Any = None,
) -> np.ndarray[Any, Any]:
    """``values`` (nested lists from JSON or CSV) as an array of ``dtype``, or InvalidInput.

    Two hints skip work on the hot path: ``may_hold_bools=False`` skips the scan for booleans
    among numbers (numpy silently turns ``[true, 2]`` into integers) — pass it when the JSON text
    holds no ``true`` or ``false``; ``may_hold_nonfinite=False`` skips the NaN/infinity check —
    pass it for values from a JSON parser, which refuses them. ``written`` is how the client wrote
    the values, if not ``values`` (the text of CSV cells), for messages.
    """
    at = locate or json_path(where)
    try:
        raw = np.asarray(values)
    except ValueError as exc:
        if "maximum number of dimension" in str(exc):
            raise InvalidInput(f"{where}: lists nested more than 64 deep") from None
        raise InvalidInput(f"{where}: not a regular array (rows of different lengths)") from None
    kind = raw.dtype.kind
    target = dtype.kind
    if raw.size == 0:
        return raw.astype(dtype)  # no values: the batch check names the empty batch
    if target == "O":
        if kind not in "USO":
            raise _wrong_kind(raw, datatype, where)
        # numpy turns ["a", 1] into strings: look for a leaf that is not one
        _refuse_first(values, lambda v: not isinstance(v, str | bytes), datatype, at)
        return raw.astype(object)
    if kind == "O":
        _refuse_first(values, lambda v: not _is_number(v, target), datatype, at)
        if target == "f":  # numbers numpy could not fit one type: floats and huge integers
            try:
                raw = np.array(values, dtype=np.float64)
            except OverflowError:
                raise InvalidInput(f"{where}: a number is out of range for {datatype}") from None
            kind = "f"
    if target == "b":
        if kind != "b":
            raise _wrong_kind(raw, datatype, where)
        return raw
    if may_hold_bools and kind in "iuf":
        _refuse_first(values, lambda v: isinstance(v, bool), datatype, at)
    if target in "iu":
        if kind in "fO":
            # floats, or integers numpy could not fit one type ([-1, 2**64 - 1] becomes float64):
            # refuse the first leaf that is not an integer in range, or build the array exactly
            _refuse_first(values, lambda v: not _fits(v, dtype), datatype, at, dtype)
            return np.array(values, dtype=dtype)
        if kind not in "iu":
            raise _wrong_kind(raw, datatype, where)
        _check_range(raw, values if written is None else written, datatype, dtype, at)
        return raw.astype(dtype, copy=False)
    if kind not in "iuf":
        raise _wrong_kind(raw, datatype, where)
    shown = values if written is None else written
    if may_hold_nonfinite:
        check_finite(raw, at, shown)
    _check_range(raw, shown, datatype, dtype, at)
    return raw.astype(dtype, copy=False)


def check_finite(array: np.ndarray[Any, Any], at: Locate, written: Any = None) -> None:
    """Refuse NaN and ±infinity in a float array (``written``: the values as sent, if known)."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        index = _first(~np.isfinite(array))
        raise InvalidInput(
            f"{at(index)}: {_show(_leaf(written, index, array))} is refused; send finite "
            "numbers (NaN and infinity are not accepted)"
        )


def out_of_range(array: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any] | None:
    """A mask of the values of ``array`` that ``dtype`` cannot hold, or None when all fit.

    One min and one max decide the common case; only a refusal builds the mask."""
    if array.size == 0 or array.dtype == dtype:
        return None
    if dtype.kind in "iu" and array.dtype.kind in "iu":
        info = np.iinfo(dtype)
        if array.min() >= info.min and array.max() <= info.max:
            return None
        return (array < info.min) | (array > info.max)
    if dtype.kind == "f" and dtype.itemsize < 8 and array.dtype.kind in "iuf":
        # through float64: abs() or a comparison on the lowest int64 would wrap
        wide = array.astype(np.float64, copy=False)
        limit = float(np.finfo(dtype).max)
        if -limit <= wide.min() and wide.max() <= limit:
            return None
        mask = (np.abs(wide) > limit) & np.isfinite(wide)  # inf and NaN are not "out of range"
        return mask if mask.any() else None
    return None


def range_of(datatype: str, dtype: np.dtype[Any]) -> str:
    """``UINT8 (0 to 255)``, ``FP32 (largest magnitude 3.4028235e+38)``."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return f"{datatype} ({info.min} to {info.max})"
    return f"{datatype} (largest magnitude {float(np.finfo(dtype).max):.8g})"


def _check_range(
    raw: np.ndarray[Any, Any], values: Any, datatype: str, dtype: np.dtype[Any], at: Locate
) -> None:
    bad = out_of_range(raw, dtype)
    if bad is not None:
        index = _first(bad)
        raise InvalidInput(
            f"{at(index)}: {_show(_leaf(values, index, raw))} is out of range for "
            f"{range_of(datatype, dtype)}"
        )


def _leaf(values: Any, index: tuple[int, ...], raw: np.ndarray[Any, Any]) -> Any:
    """The value as the client wrote it (numpy shows 70000 among floats as 70000.0)."""
    try:
        for i in index:
            values = values[i]
    except (TypeError, IndexError, KeyError):
        return raw[index]
    return values


def _is_number(value: Any, target: str) -> bool:
    if target in "iuf":
        return isinstance(value, int | float)  # bools are refused by their own scan
    return isinstance(value, bool) if target == "b" else True


def _fits(value: Any, dtype: np.dtype[Any]) -> bool:
    if type(value) is not int:
        return False
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


def _refuse_first(
    values: Any,
    is_bad: Callable[[Any], bool],
    datatype: str,
    at: Locate,
    dtype: np.dtype[Any] | None = None,
) -> None:
    """Raise InvalidInput for the first leaf of the nested lists ``values`` that ``is_bad``."""
    found = _find(values, is_bad, ())
    if found is None:
        return
    index, value = found
    if dtype is not None and (type(value) is int or _huge_whole(value)):
        # JSON parsers hand integers beyond 64 bits over as floats: still out of range
        raise InvalidInput(
            f"{at(index)}: {_show(value)} is out of range for {range_of(datatype, dtype)}"
        )
    if isinstance(value, float) and not isinstance(value, bool) and dtype is not None:
        raise InvalidInput(
            f"{at(index)}: expected {datatype} values, got the floating-point number "
            f"{_show(value)}; write whole numbers without a fraction or an exponent"
        )
    raise InvalidInput(f"{at(index)}: expected {datatype} values, got {_describe(value)}")


def _huge_whole(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer() and abs(value) >= 2.0**63


def _find(
    values: Any, is_bad: Callable[[Any], bool], prefix: tuple[int, ...]
) -> tuple[tuple[int, ...], Any] | None:
    if isinstance(values, list | tuple):
        for i, value in enumerate(values):
            found = _find(value, is_bad, (*prefix, i))
            if found is not None:
                return found
        return None
    return (prefix, values) if is_bad(values) else None


def _first(mask: np.ndarray[Any, Any]) -> tuple[int, ...]:
    flat = int(np.flatnonzero(mask)[0])
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def _wrong_kind(raw: np.ndarray[Any, Any], datatype: str, where: str) -> InvalidInput:
    name = _KIND_NAMES.get(raw.dtype.kind, "mixed values (or null)")
    return InvalidInput(f"{where}: expected {datatype} values, got {name}")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return f"the number {_show(value)}"
    return "an object" if isinstance(value, dict) else f"a {type(value).__name__}"


def _show(value: Any) -> str:
    """A value as the client wrote it: a number, or a CSV cell's text."""
    if isinstance(value, str):
        return value if len(value) <= 40 else value[:37] + "..."
    return repr(value.item() if isinstance(value, np.generic) else value)
