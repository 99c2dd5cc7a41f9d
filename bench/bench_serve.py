"""Serving benchmark: mlbuild's server against a bare uvicorn+orjson app, `mlflow models serve` and
BentoML, side by side in one run, on the same models and machine, loopback only.

For each model (HistGradientBoosting and LogisticRegression, 20 features), each server is started,
timed to its first ready answer, checked to give the expected predictions, warmed up, and then
loaded with wrk (closed loop, fixed duration) at each concurrency with 1-row and 100-row bodies.
Per point: requests/s, p99 latency, errors, and the server's CPU time per request — utime+stime of
the server's whole process tree from /proc, before and after — the figure least moved by other
load on a shared machine.

    OMP_NUM_THREADS=1 python bench/bench_serve.py [--duration 5] [--json out.json]

Needs: wrk (Debian's `wrk`), mlbuild-engine[serve] in this Python, MLflow in --mlflow-python's
venv and BentoML in --bentoml's (see bench/RESULTS.md for the exact setup). A peer that is
missing is reported and skipped.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))
from train_model import FEATURES, data  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

RECIPE = f"""\
schema_version: 1
name: bench
steps:
  train:
    cmd: python train_model.py {{kind}}
    deps: [train_model.py]
    env: {{{{OMP_NUM_THREADS: "1"}}}}
    outs: [model.joblib]
model:
  name: m
  artifacts: {{{{model: model.joblib}}}}
  flavor: sklearn
  signature:
    inputs: [{{{{name: input-0, datatype: FP64, shape: [-1, {FEATURES}]}}}}]
    outputs: [{{{{name: label, datatype: INT64, shape: [-1]}}}}]
"""


@dataclass
class Point:
    model: str
    server: str
    body: str
    rows: int
    concurrency: int
    workers: int
    requests: int
    rps: float
    p99_ms: float
    errors: int
    cpu_ms_per_request: float


@dataclass
class Server:
    name: str
    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    health: str
    bodies: dict[str, tuple[str, str]]  # body kind → (path, body file stem)
    workers: int = 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlbuild-bench-serve"))
    parser.add_argument("--duration", type=int, default=3, help="seconds per measurement")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measurements per point, interleaved across servers"
    )
    parser.add_argument("--models", default="hgb,lr")
    parser.add_argument("--rows", default="1,100")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--servers", default="mlbuild,bare,mlflow,bentoml")
    parser.add_argument("--mlflow-python", default="/tmp/mlflowvenv/bin/python")
    parser.add_argument("--bentoml", default="/tmp/bentovenv/bin/bentoml")
    parser.add_argument("--json", type=Path, help="also write every point here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    rows_list = [int(r) for r in args.rows.split(",")]
    levels = [int(c) for c in args.concurrency.split(",")]
    wanted = args.servers.split(",")
    points: list[Point] = []
    startups: list[tuple[str, str, float]] = []
    for kind in args.models.split(","):
        ws = _workspace(args.workdir / kind, kind)
        expected = _expected(ws, rows_list)
        servers = _servers(args, ws, kind, wanted)
        for server in _servers(args, ws, kind, [w for w in wanted if w in ("mlbuild", "bare")]):
            server.name += " x2"
            server.workers = 2
            server.cmd += ["--workers", "2"]
            servers.append(server)
        points += _bench_model(
            servers, kind, ws, rows_list, levels, args.duration, args.rounds, expected, startups
        )
    _report(points, startups)
    if args.json:
        args.json.write_text(
            json.dumps({"points": [asdict(p) for p in points], "startups": startups}, indent=1)
        )
    return 0


def _workspace(ws: Path, kind: str) -> Path:
    """An mlbuild workspace that trains the model; bodies for every row count."""
    ws.mkdir(parents=True, exist_ok=True)
    shutil.copy(BENCH / "train_model.py", ws / "train_model.py")
    (ws / "ml.yaml").write_text(RECIPE.format(kind=kind))
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "mlbuild", "run", "-q"],
        cwd=ws,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"mlbuild run failed in {ws}:\n{done.stderr}")
    x, _ = data()
    columns = [f"f{i}" for i in range(FEATURES)]
    for rows in (1, 100):
        sample = x[:rows].tolist()
        bodies = {
            "oip": {
                "inputs": [
                    {
                        "name": "input-0",
                        "datatype": "FP64",
                        "shape": [rows, FEATURES],
                        "data": sample,
                    }
                ]
            },
            "dataframe_split": {"dataframe_split": {"columns": columns, "data": sample}},
            "inputs": {"inputs": sample},
            "bentoml": {"data": sample},
        }
        for name, body in bodies.items():
            (ws / f"{name}-{rows}.json").write_text(json.dumps(body))
    return ws


def _expected(ws: Path, rows_list: list[int]) -> dict[int, list[int]]:
    import joblib

    model = joblib.load(ws / "model.joblib")
    x, _ = data()
    return {rows: model.predict(x[:rows]).tolist() for rows in rows_list}


def _servers(args: argparse.Namespace, ws: Path, kind: str, wanted: list[str]) -> list[Server]:
    base = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)}
    found = []
    if "mlbuild" in wanted:
        found.append(
            Server(
                "mlbuild",
                [sys.executable, "-m", "mlbuild", "serve"],
                ws,
                base,
                "/v2/health/ready",
                {
                    "oip": ("/v2/models/m/infer", "oip"),
                    "dataframe_split": ("/invocations", "dataframe_split"),
                },
            )
        )
    if "bare" in wanted:
        found.append(
            Server(
                "bare",
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.bare_app:app",
                    "--log-level",
                    "warning",
                    "--no-access-log",
                    "--host",
                    "127.0.0.1",
                ],
                ROOT,
                {**base, "MODEL": str(ws / "model.joblib")},
                "/health",
                {"oip": ("/", "oip")},
            )
        )
    if "mlflow" in wanted:
        model_dir = ws / "mlflow-model"
        if not Path(args.mlflow_python).exists():
            print(f"skipping mlflow: {args.mlflow_python} does not exist", file=sys.stderr)
        else:
            if not model_dir.exists():
                subprocess.run(
                    [args.mlflow_python, str(BENCH / "mlflow_export.py"), kind, str(model_dir)],
                    cwd=BENCH,
                    env={**base, "PYTHONPATH": str(BENCH)},
                    check=True,
                    capture_output=True,
                )
            mlflow = str(Path(args.mlflow_python).parent / "mlflow")
            found.append(
                Server(
                    "mlflow",
                    [
                        mlflow,
                        "models",
                        "serve",
                        "-m",
                        str(model_dir),
                        "-h",
                        "127.0.0.1",
                        "--env-manager",
                        "local",
                        "-w",
                        "1",
                    ],
                    ws,
                    # its own venv first on PATH: mlflow execs `uvicorn` by name
                    {**base, "PYTHONPATH": "", "PATH": f"{Path(mlflow).parent}:{base['PATH']}"},
                    "/ping",
                    {
                        "dataframe_split": ("/invocations", "dataframe_split"),
                        "inputs": ("/invocations", "inputs"),
                    },
                )
            )
    if "bentoml" in wanted:
        if not Path(args.bentoml).exists():
            print(f"skipping bentoml: {args.bentoml} does not exist", file=sys.stderr)
        else:
            found.append(
                Server(
                    "bentoml",
                    [args.bentoml, "serve", "bento_service:Classifier", "--host", "127.0.0.1"],
                    BENCH,
                    {
                        **base,
                        "PYTHONPATH": "",
                        "MODEL": str(ws / "model.joblib"),
                        "BENTOML_HOME": str(ws / "bentoml-home"),
                        "BENTOML_DO_NOT_TRACK": "True",
                    },
                    "/readyz",
                    {"bentoml": ("/predict", "bentoml")},
                )
            )
    return found


def _bench_model(
    servers: list[Server],
    kind: str,
    ws: Path,
    rows_list: list[int],
    levels: list[int],
    duration: int,
    rounds: int,
    expected: dict[int, list[int]],
    startups: list[tuple[str, str, float]],
) -> list[Point]:
    """Start every server (one at a time, timed), then measure each point ``rounds`` times,
    taking the servers in turn so that background load on the machine falls on all of them
    alike; report each point's median. Two-worker servers only run 1-row bodies at c=16."""
    running: list[tuple[Server, subprocess.Popen[bytes], int]] = []
    logs = []
    try:
        for server in servers:
            port = _free_port()
            log = open(ws / f"{server.name.replace(' ', '-')}.log", "w")  # noqa: SIM115
            logs.append(log)
            started = time.monotonic()
            proc = subprocess.Popen(
                [*server.cmd, "--port", str(port)],
                cwd=server.cwd,
                env=server.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            running.append((server, proc, port))
            ready = _wait(port, server.health, proc, started)
            startups.append((kind, server.name, ready))
            print(f"[{kind}] {server.name}: ready in {ready:.2f}s", file=sys.stderr)
            for path, stem in server.bodies.values():
                for rows in rows_list:
                    body_file = ws / f"{stem}-{rows}.json"
                    _check(port, path, body_file, expected[rows], f"{server.name} {stem} {rows}")
                    _wrk(port, path, body_file, 4, 1)  # warm up
        points = []
        for rows in rows_list:
            for concurrency in levels:
                samples: dict[tuple[str, str], list[Point]] = {}
                for _ in range(rounds):
                    for server, proc, port in running:
                        if server.workers > 1 and (rows, concurrency) != (1, 16):
                            continue
                        for body, (path, stem) in server.bodies.items():
                            if server.workers > 1 and body != next(iter(server.bodies)):
                                continue
                            before = _cpu(proc.pid)
                            out = _wrk(
                                port, path, ws / f"{stem}-{rows}.json", concurrency, duration
                            )
                            cpu = _cpu(proc.pid) - before
                            samples.setdefault((server.name, body), []).append(
                                _parse(
                                    out,
                                    kind,
                                    server.name,
                                    body,
                                    rows,
                                    concurrency,
                                    server.workers,
                                    cpu,
                                )
                            )
                for measured in samples.values():
                    point = _median(measured)
                    points.append(point)
                    print(
                        f"[{kind}] {point.server:12} {point.body:16} rows={rows:<3} "
                        f"c={concurrency:<2} {point.rps:8.1f} req/s  p99 {point.p99_ms:7.2f} ms  "
                        f"cpu {point.cpu_ms_per_request:6.3f} ms/req  errors {point.errors}",
                        file=sys.stderr,
                    )
        return points
    finally:
        for _, proc, _ in running:
            _stop(proc)
        for log in logs:
            log.close()


def _median(measured: list[Point]) -> Point:
    """One point from several measurements: the median of each figure, the sum of errors."""
    first = measured[0]
    return Point(
        first.model,
        first.server,
        first.body,
        first.rows,
        first.concurrency,
        first.workers,
        sum(p.requests for p in measured),
        float(np.median([p.rps for p in measured])),
        float(np.median([p.p99_ms for p in measured])),
        sum(p.errors for p in measured),
        float(np.median([p.cpu_ms_per_request for p in measured])),
    )


def _wait(port: int, path: str, proc: subprocess.Popen[bytes], started: float) -> float:
    deadline = started + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see its log")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit("server not ready after 120 s")


def _check(port: int, path: str, body_file: Path, expected: list[int], what: str) -> None:
    """The server's predictions for the body must be the model's."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body_file.read_bytes(), {"Content-Type": "application/json"})
    response = conn.getresponse()
    raw = response.read()
    if response.status != 200:
        raise SystemExit(f"{what}: HTTP {response.status}: {raw[:300]!r}")
    answer = json.loads(raw)
    labels = _labels(answer)
    if [int(v) for v in np.asarray(labels).ravel().tolist()] != expected:
        raise SystemExit(f"{what}: predictions differ: {str(labels)[:200]}")


def _labels(answer: Any) -> Any:
    if isinstance(answer, dict) and "outputs" in answer:
        return answer["outputs"][0]["data"]
    if isinstance(answer, dict) and "predictions" in answer:
        return answer["predictions"]
    return answer


def _wrk(port: int, path: str, body_file: Path, concurrency: int, duration: int) -> str:
    threads = 1 if concurrency == 1 else 2
    done = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{duration}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "post.lua"),
            f"http://127.0.0.1:{port}{path}",
        ],
        env={**os.environ, "BODY_FILE": str(body_file)},
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    )
    return done.stdout


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _parse(
    out: str,
    kind: str,
    server: str,
    body: str,
    rows: int,
    concurrency: int,
    workers: int,
    cpu_seconds: float,
) -> Point:
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * _UNITS[p99.group(2)] if p99 else float("nan")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    cpu = cpu_seconds * 1000 / requests if requests else float("nan")
    return Point(kind, server, body, rows, concurrency, workers, requests, rps, p99_ms, errors, cpu)


def _cpu(root: int) -> float:
    """utime+stime, in seconds, of ``root`` and every process below it."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = int(fields[11]) + int(fields[12])
    total = 0
    for pid, ticks in times.items():
        current = pid
        while current > 1:
            if current == root:
                total += ticks
                break
            current = parents.get(current, 0)
    return total / TICKS


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _report(points: list[Point], startups: list[tuple[str, str, float]]) -> None:
    print("| model | rows | conc | server | body | req/s | p99 ms | CPU ms/req | errors |")
    print("| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for p in points:
        print(
            f"| {p.model} | {p.rows} | {p.concurrency} | {p.server} | {p.body} | {p.rps:.0f} | "
            f"{p.p99_ms:.2f} | {p.cpu_ms_per_request:.3f} | {p.errors} |"
        )
    print()
    print(
        "| model | rows | conc | server | body | CPU vs bare | p99 vs bare "
        "| req/s vs mlflow (split) | req/s vs bentoml |"
    )
    print("| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |")
    index = {(p.model, p.rows, p.concurrency, p.server, p.body): p for p in points}
    for p in points:
        if not p.server.startswith("mlbuild"):
            continue
        bare = index.get(
            (p.model, p.rows, p.concurrency, p.server.replace("mlbuild", "bare"), "oip")
        )
        mlflow = index.get((p.model, p.rows, p.concurrency, "mlflow", "dataframe_split"))
        bento = index.get((p.model, p.rows, p.concurrency, "bentoml", "bentoml"))

        def ratio(a: float, b: Point | None, attr: str) -> str:
            return f"{a / getattr(b, attr):.2f}x" if b else "—"

        print(
            f"| {p.model} | {p.rows} | {p.concurrency} | {p.server} | {p.body} | "
            f"{ratio(p.cpu_ms_per_request, bare, 'cpu_ms_per_request')} | "
            f"{ratio(p.p99_ms, bare, 'p99_ms')} | {ratio(p.rps, mlflow, 'rps')} | "
            f"{ratio(p.rps, bento, 'rps')} |"
        )
    print()
    print("| model | server | startup to first ready answer (s) |")
    print("| --- | --- | ---: |")
    for kind, name, seconds in startups:
        print(f"| {kind} | {name} | {seconds:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
