"""The smoke test before a publish: start the built image, wait until it is ready, send sample
rows, and compare its predictions with the same rows predicted in-process from the same bytes.

The rows are ``package.sample`` (a ``.csv`` with a header, or ``.jsonl``), else three rows made
from the signature (columnar inputs only). Both sides decode them with the MLflow scoring path
(``POST /invocations``), so the comparison is of predictions, not of parsers. Floats must agree
to 1e-9 (relative): the image runs the lock's wheels, the host may run other builds of them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbuild.package.errors import SmokeTestError

READY_TIMEOUT = 120.0
_REL = 1e-9


@dataclass(frozen=True)
class Sample:
    body: bytes
    content_type: str
    rows: int
    origin: str  # the file, or "the signature"


@dataclass(frozen=True)
class SmokeResult:
    rows: int
    ready_seconds: float
    origin: str


def sample_for(root: Path, sample: str | None, signature: dict[str, Any]) -> Sample:
    """The rows to send: ``sample`` (a path in the workspace), else rows from ``signature``."""
    if sample is not None:
        path = root / sample
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SmokeTestError(f"package.sample: cannot read {sample} ({exc})") from None
        if sample.endswith(".csv"):
            rows = max(len([line for line in text.splitlines() if line.strip()]) - 1, 0)
            return Sample(text.encode(), "text/csv", rows, sample)
        try:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise SmokeTestError(f"package.sample: {sample} is not JSON lines ({exc})") from None
        body = json.dumps({"dataframe_records": records}).encode()
        return Sample(body, "application/json", len(records), sample)
    return Sample(_rows_from(signature), "text/csv", 3, "the signature")


_VALUES = {"BOOL": ["true", "false", "true"], "BYTES": ["a", "b", "c"]}


def _rows_from(signature: dict[str, Any]) -> bytes:
    inputs = signature.get("inputs") or []
    if not inputs or any(list(t.get("shape", [-1])) != [-1] for t in inputs):
        raise SmokeTestError(
            "the smoke test cannot make rows for inputs that are not columns (shape [-1]); "
            "give it sample rows: `package.sample: tests/sample.csv`"
        )
    names = [str(t["name"]) for t in inputs]
    columns = [_VALUES.get(str(t["datatype"]), ["1", "2", "3"]) for t in inputs]
    lines = [",".join(names)] + [",".join(col[i] for col in columns) for i in range(3)]
    return ("\n".join(lines) + "\n").encode()


def expected_predictions(source: Any, sample: Sample) -> Any:
    """The predictions of ``sample`` by the model loaded in this process."""
    from mlbuild.serve import InvalidInput, ModelRuntime
    from mlbuild.serve.mlflow import decode_csv, decode_json, encode

    runtime = ModelRuntime.load(source)
    try:
        if sample.content_type == "text/csv":
            inputs = decode_csv(runtime, sample.body.decode())
        else:
            inputs = decode_json(runtime, sample.body)
    except InvalidInput as exc:
        raise SmokeTestError(f"the smoke test's rows ({sample.origin}): {exc.message}") from None
    return json.loads(encode(runtime.predict(inputs)))


def smoke_test(client: Any, image_id: str, port: int, sample: Sample, expected: Any) -> SmokeResult:
    """Run ``image_id``, wait for ready, post ``sample``, compare with ``expected``; the
    container is removed whatever happens."""
    import docker

    started = time.monotonic()
    try:
        container = client.containers.run(
            image_id,
            detach=True,
            ports={f"{port}/tcp": ("127.0.0.1", None)},
            labels={"dev.mlbuild.smoke-test": "1"},
        )
    except docker.errors.APIError as exc:
        raise SmokeTestError(f"the image did not start: {exc.explanation}") from None
    try:
        host_port = _published_port(container, port)
        ready = _wait_ready(container, host_port, started)
        status, body = _post(host_port, sample)
        if status != 200:
            raise SmokeTestError(
                f"the image answered {status} to the sample rows ({sample.origin}): "
                f"{body[:300].decode(errors='replace')}"
            )
        got = json.loads(body)
        if not _same(got, expected):
            raise SmokeTestError(
                f"the image predicted {_short(got)} for the sample rows ({sample.origin}), but "
                f"the model in-process predicts {_short(expected)}; the image is not published"
            )
        return SmokeResult(sample.rows, ready, sample.origin)
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)


def _published_port(container: Any, port: int) -> int:
    for _ in range(50):
        container.reload()
        bound = (container.attrs["NetworkSettings"].get("Ports") or {}).get(f"{port}/tcp")
        if bound:
            return int(bound[0]["HostPort"])
        if container.status == "exited":
            break
        time.sleep(0.1)
    raise SmokeTestError(f"the image exited before it served:\n{_logs(container)}")


def _wait_ready(container: Any, host_port: int, started: float) -> float:
    deadline = started + READY_TIMEOUT
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            raise SmokeTestError(f"the image exited before it was ready:\n{_logs(container)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", host_port, timeout=2)
            try:
                conn.request("GET", "/v2/health/ready")
                if conn.getresponse().status == 200:
                    return time.monotonic() - started
            finally:
                conn.close()
        time.sleep(0.25)
    raise SmokeTestError(
        f"the image was not ready within {READY_TIMEOUT:.0f} s (GET /v2/health/ready):\n"
        f"{_logs(container)}"
    )


def _post(host_port: int, sample: Sample) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", host_port, timeout=60)
    try:
        conn.request(
            "POST", "/invocations", body=sample.body, headers={"Content-Type": sample.content_type}
        )
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise SmokeTestError(f"the image did not answer the sample rows: {exc}") from None
    finally:
        conn.close()


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        if not isinstance(got, int | float) or not isinstance(want, int | float):
            return False
        return math.isclose(got, want, rel_tol=_REL, abs_tol=_REL)
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(_same(g, w) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(_same(got[k], want[k]) for k in want)
        )
    return bool(got == want)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _logs(container: Any) -> str:
    try:
        raw = container.logs(tail=20)
    except Exception:  # the logs only decorate the message
        return "(no logs)"
    return "\n".join(raw.decode(errors="replace").strip().splitlines()[-20:])
