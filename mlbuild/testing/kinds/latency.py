"""``kind: latency``: the 95th percentile of prediction latency within budget — in-process (the
model's ``predict`` on decoded inputs) and through ``mlbuild serve`` (a whole Open Inference
Protocol request on one kept-alive connection, as a client sees it).

Rows of the file are sent ``batch`` at a time, cycling through the file; ``warmup`` predictions
come first and are not timed (the first calls of a model are slow: lazy imports, caches).
"""

from __future__ import annotations

import http.client
import math
import time

from mlbuild.errors import MlbuildError
from mlbuild.testing.predict import Arrays, inputs_of, oip_request, predict
from mlbuild.testing.session import Session
from mlbuild.testing.spec import CompiledTest
from mlbuild.testing.verdict import Measured, Verdict


def run(test: CompiledTest, session: Session) -> Verdict:
    config = test.config
    assert test.table is not None
    table = session.table(test.table)
    runtime = session.runtime()
    batch, count, warmup = int(config["batch"]), int(config["requests"]), int(config["warmup"])
    every = inputs_of(runtime, table)
    size = len(table.rows)
    plan: list[Arrays] = []
    for i in range(count + warmup):
        rows = [(i * batch + j) % size for j in range(batch)]  # cycling through the file
        plan.append({name: array[rows] for name, array in every.items()})
    measured: Measured = {"requests": count, "batch": batch}
    failed: list[str] = []
    passed: list[str] = []
    if config.get("p95_ms") is not None:
        times = _in_process(session, plan, table.path)[warmup:]
        _judge("in-process", times, float(config["p95_ms"]), "", measured, passed, failed)
    if config.get("server_p95_ms") is not None:
        bodies = [oip_request(runtime, inputs) for inputs in plan]
        times = _through_server(session, bodies)[warmup:]
        _judge("server", times, float(config["server_p95_ms"]), "server_", measured, passed, failed)
    what = f"{count} predictions of {batch} row{'s' if batch != 1 else ''}"
    if failed:
        return Verdict(False, "; ".join(failed) + f" ({what})", passed, measured)
    return Verdict(True, "; ".join(passed) + f" ({what})", [], measured)


def _in_process(session: Session, plan: list[Arrays], where: str) -> list[float]:
    runtime = session.runtime()
    times = []
    for inputs in plan:
        started = time.perf_counter()
        predict(runtime, inputs, where)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _through_server(session: Session, bodies: list[bytes]) -> list[float]:
    server = session.server()
    path = f"/v2/models/{session.source().name}/infer"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    times = []
    try:
        for body in bodies:
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = response.read()
            times.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise MlbuildError(
                    f"the server answered {response.status} to a prediction: "
                    f"{answer[:200].decode('utf-8', 'replace')}"
                )
    finally:
        conn.close()
    return times


def _judge(
    where: str,
    times: list[float],
    budget: float,
    prefix: str,
    measured: Measured,
    passed: list[str],
    failed: list[str],
) -> None:
    p50, p95 = percentile(times, 50), percentile(times, 95)
    measured[f"{prefix}p50_ms"] = round(p50, 3)
    measured[f"{prefix}p95_ms"] = round(p95, 3)
    line = f"{where} p95 {p95:.3g} ms"
    if p95 <= budget:
        passed.append(f"{line} <= {budget:g} ms (p50 {p50:.3g} ms)")
    else:
        failed.append(f"{line} is above the budget {budget:g} ms (p50 {p50:.3g} ms)")


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value at least ``share`` % of ``values`` do
    not exceed."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]
