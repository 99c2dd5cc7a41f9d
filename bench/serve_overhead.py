"""In-process cost of one request through mlbuild's ASGI app, without HTTP, wrk or other processes:
the figure least moved by a busy machine. Run it once per checkout to compare two versions:

    python bench/serve_overhead.py --checkout /tmp/base --workdir /tmp/mlbuild-bench-serve
    python bench/serve_overhead.py --checkout .         --workdir /tmp/mlbuild-bench-serve

It loads the model that ``bench_serve.py`` built in ``WORKDIR/KIND`` (run that first), sends the
same OIP and ``dataframe_split`` bodies through ``PredictionApp.__call__`` one after another on
uvloop, and prints process CPU time per request (both threads counted): with the real model, and
with the model's predict replaced by a constant (the server's own work alone). Each figure is the
best of ``--repeat`` runs of ``--requests`` requests.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, required=True, help="the mlbuild to measure")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlbuild-bench-serve"))
    parser.add_argument("--models", default="hgb,lr")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(args.checkout.resolve()))
    import numpy as np
    import uvloop

    from mlbuild.serve.app import PredictionApp
    from mlbuild.serve.resolve import ModelSource
    from mlbuild.serve.runtime import ModelRuntime

    signature = {
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 20]}],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
    }
    for kind in args.models.split(","):
        ws = args.workdir / kind
        source = ModelSource(
            "m", "v", str(ws), "sklearn", None, {"model": str(ws / "model.joblib")}, signature
        )
        runtime = ModelRuntime.load(source)
        for constant in (False, True):
            if constant:
                runtime.servable.estimator = _Constant(np)
            app = PredictionApp(runtime, max_body=8 << 20, token=None)
            for body_kind, path in (
                ("oip", "/v2/models/m/infer"),
                ("dataframe_split", "/invocations"),
            ):
                for rows in (1, 100):
                    body = (ws / f"{body_kind}-{rows}.json").read_bytes()
                    cost = uvloop.run(_measure(app, path, body, args.requests, args.repeat))
                    model = "constant" if constant else kind
                    print(
                        f"{args.checkout}  {model:8} {body_kind:15} rows={rows:<3} "
                        f"{cost * 1e6:8.1f} us CPU/request"
                    )
    return 0


class _Constant:
    """A stand-in estimator: the server's own work, without the model's."""

    def __init__(self, np: Any) -> None:
        self.np = np

    def predict(self, x: Any) -> Any:
        return self.np.zeros(len(x), dtype=self.np.int64)


async def _measure(app: Any, path: str, body: bytes, requests: int, repeat: int) -> float:
    scope = {
        "type": "http",
        "path": path,
        "method": "POST",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(min(requests, 200)):
        await app(scope, receive, send)
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(requests):
            await app(scope, receive, send)
        best = min(best, (time.process_time() - started) / requests)
    if set(statuses) != {200}:
        raise SystemExit(f"{path}: statuses {sorted(set(statuses))}")
    return best


if __name__ == "__main__":
    raise SystemExit(main())
