"""The model check itself, run as ``python -m mlbuild.serve.check.child REQUEST.json`` by the
``model-check`` kind: load the model exactly as ``mlbuild serve`` does (artifacts hashed again
before anything is unpickled), predict on the sample as ``mlbuild predict`` does, and write a
result JSON: ``{"model", "version", "rows", "predictions"}`` (the first rows), or ``{"error"}``.

Its own process: numpy, scikit-learn and the model's code load here, never in mlbuild, and the
executor can time it out or stop it like any step's command.
"""

from __future__ import annotations

import csv
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from mlbuild import atomic
from mlbuild.errors import MlbuildError
from mlbuild.extras import extra_needed


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result_path = Path(request["result"])
    try:
        with extra_needed("serve", "the model check"):
            result = _check(request)
    except MlbuildError as exc:
        return _failed(result_path, exc.message)
    except Exception as exc:  # the model's own code: its traceback goes to the step's log
        traceback.print_exc()
        return _failed(result_path, f"the model raised {type(exc).__name__}: {exc}")
    atomic.write_json(result_path, result, sync=False)
    return 0


def _failed(result_path: Path, message: str) -> int:
    atomic.write_json(result_path, {"error": message}, sync=False)
    print(f"mlbuild: {message}", file=sys.stderr)
    return 1


def _check(request: dict[str, Any]) -> dict[str, Any]:
    from mlbuild.serve.batch import predict_file
    from mlbuild.serve.errors import InvalidInput
    from mlbuild.serve.resolve import ModelSource
    from mlbuild.serve.runtime import ModelRuntime

    source = ModelSource.from_json(request["source"])
    runtime = ModelRuntime.load(source)
    print(f"loaded model '{runtime.name}' version {runtime.version}", flush=True)
    result: dict[str, Any] = {"model": runtime.name, "version": runtime.version, "rows": 0}
    sample = request["sample"]
    if sample is None:
        print("no sample declared (model.check.sample): the model loads; nothing predicted")
        return result
    output = Path(request["output"] or Path(request["result"]).with_name(_scratch(sample)))
    try:  # the declared output appears whole or not at all (the model may fail half-way)
        with (
            atomic.replacing(output, sync=False) as tmp,
            tmp.open("w", encoding="utf-8", newline="") as handle,
        ):
            rows = predict_file(runtime, Path(sample), handle)
    except InvalidInput as exc:
        raise MlbuildError(f"{sample}: {exc.message}") from None
    print(f"predicted {rows} row{'s' if rows != 1 else ''} of {sample}", flush=True)
    result["rows"] = rows
    result["predictions"] = _first(output, int(request["shown"]))
    return result


def _scratch(sample: str) -> str:
    """Where predictions go when no output file is declared: beside the result, same format."""
    return "predictions.csv" if sample.lower().endswith(".csv") else "predictions.jsonl"


def _first(path: Path, count: int) -> list[Any]:
    """The first ``count`` predictions of ``path``, as records."""
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            return [dict(row) for _, row in zip(range(count), reader, strict=False)]
        return [json.loads(line) for _, line in zip(range(count), handle, strict=False)]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
