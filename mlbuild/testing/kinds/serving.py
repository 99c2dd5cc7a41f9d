"""``kind: serving``: start ``mlbuild serve``, check its health and metadata, send the file's rows
through both protocols and require exactly the in-process predictions — train/serve consistency,
proven on the real server process rather than assumed.

``target: bundle`` serves the bundle ``mlbuild package`` makes of the model (``mlbuild serve
BUNDLE``, from a temporary directory, no repository): what ships answers as the model did in
training. The image (``target: image``) is not built yet.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mlbuild.testing.predict import as_list, inputs_of, oip_request, oip_rows, predict
from mlbuild.testing.server import ServerProcess
from mlbuild.testing.session import Session
from mlbuild.testing.spec import CompiledTest
from mlbuild.testing.verdict import Measured, Verdict, capped

CHUNK = 1000  # rows per request: far below the server's default body limit


def run(test: CompiledTest, session: Session) -> Verdict:
    source = session.source()
    bundle = test.config.get("target") == "bundle"
    server = session.bundle_server() if bundle else session.server()
    failures = _health(server, source.name) + _metadata(server, source)
    rows = 0
    tolerance = float(test.config.get("tolerance", 0.0))
    if test.table is not None:
        table = session.table(test.table)
        runtime = session.runtime()
        for first in range(0, len(table.rows), CHUNK):
            end = min(first + CHUNK, len(table.rows))
            inputs = inputs_of(runtime, table, first, end)
            expected = predict(runtime, inputs, table.path)
            where = [table.where(i) for i in range(first, end)]
            answers = {
                "v2 infer": _oip(server, source.name, oip_request(runtime, inputs), expected),
                "/invocations": _invocations(server, runtime, inputs, expected),
            }
            for route, got in answers.items():
                if isinstance(got, str):
                    failures.append(f"{route}: {got}")
                    continue
                failures += _differences(route, where, expected, got, tolerance)
            rows += end - first
    checked = (
        f"health, metadata and {rows} rows through both protocols"
        if rows
        else ("health and metadata")
    )
    measured: Measured = {"rows": rows, "failures": len(failures)}
    if failures:
        return Verdict(
            False,
            f"the server differs from the in-process model: {len(failures)} problem"
            f"{'s' if len(failures) != 1 else ''}",
            capped(failures),
            measured,
        )
    return Verdict(True, f"{checked} agree with the in-process model", [], measured)


def _health(server: ServerProcess, name: str) -> list[str]:
    failures = []
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{name}/ready", "/ping"):
        status, _ = server.request("GET", path)
        if status != 200:
            failures.append(f"GET {path} answered {status}, expected 200")
    return failures


def _metadata(server: ServerProcess, source: Any) -> list[str]:
    status, meta = server.json("GET", f"/v2/models/{source.name}")
    if status != 200 or not isinstance(meta, dict):
        return [f"GET /v2/models/{source.name} answered {status}, expected 200 with metadata"]
    failures = []
    if meta.get("name") != source.name:
        failures.append(f"metadata: name {meta.get('name')!r}, expected {source.name!r}")
    if meta.get("versions") != [source.version]:
        failures.append(
            f"metadata: versions {meta.get('versions')!r}, but the model built here is version "
            f"{source.version!r}"
        )
    for side in ("inputs", "outputs"):
        expected = [
            {"name": t["name"], "datatype": t["datatype"], "shape": list(t["shape"])}
            for t in source.signature[side]
        ]
        if meta.get(side) != expected:
            failures.append(f"metadata: {side} {meta.get(side)!r}, expected {expected!r}")
    return failures


def _oip(
    server: ServerProcess, name: str, body: bytes, expected: dict[str, list[Any]]
) -> dict[str, list[Any]] | str:
    status, raw = server.request(
        "POST", f"/v2/models/{name}/infer", body, {"Content-Type": "application/json"}
    )
    if status != 200:
        return f"answered {status}: {raw[:300].decode('utf-8', 'replace')}"
    rows = len(next(iter(expected.values())))
    try:
        answer = json.loads(raw)
        return {output: oip_rows(answer, output, rows) for output in expected}
    except ValueError as exc:
        return f"unexpected answer: {exc}"


def _invocations(
    server: ServerProcess, runtime: Any, inputs: dict[str, Any], expected: dict[str, list[Any]]
) -> dict[str, list[Any]] | str:
    if runtime.signature.is_columnar:
        columns = list(inputs)
        cells = [as_list(inputs[c]) for c in columns]
        body: dict[str, Any] = {
            "dataframe_split": {
                "columns": columns,
                "data": [list(r) for r in zip(*cells, strict=True)],
            }
        }
    else:
        body = {"inputs": {name: as_list(array) for name, array in inputs.items()}}
    status, answer = server.json("POST", "/invocations", body)
    if status != 200 or not isinstance(answer, dict) or "predictions" not in answer:
        return f"answered {status}: {str(answer)[:300]}"
    predictions = answer["predictions"]
    if len(expected) == 1:
        return {next(iter(expected)): predictions}
    if not isinstance(predictions, dict):
        return "unexpected answer: 'predictions' is not one list per output"
    found: dict[str, list[Any]] = {}
    for name in expected:
        values = predictions.get(name)
        if not isinstance(values, list):
            return f"unexpected answer: no list of predictions for output '{name}'"
        found[name] = values
    return found


def _differences(
    route: str,
    where: list[str],
    expected: dict[str, list[Any]],
    got: dict[str, list[Any]],
    tolerance: float,
) -> list[str]:
    found = []
    for name, values in expected.items():
        answer = got.get(name)
        if not isinstance(answer, list) or len(answer) != len(values):
            found.append(
                f"{route}: output '{name}' has {_count(answer)} rows, expected {len(values)}"
            )
            continue
        for index, (mine, theirs) in enumerate(zip(values, answer, strict=True)):
            if not _equal(mine, theirs, tolerance):
                found.append(
                    f"{where[index]}: output '{name}': in-process {mine!r}, {route} {theirs!r}"
                )
    return found


def _equal(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y, tolerance) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, int | float) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=tolerance) if tolerance else a == b
    return bool(a == b) and type(a) is type(b)


def _count(value: Any) -> str:
    return str(len(value)) if isinstance(value, list) else "no"
