"""Prometheus metrics, kept by hand (a few dict updates per request) and rendered on scrape.

- ``mlbuild_requests_total{route,status}`` and ``mlbuild_request_duration_seconds`` (histogram);
- ``mlbuild_errors_total{route,kind}``: invalid_input, too_large, unsupported_media_type,
  timeout, overloaded, unauthorized, not_found, disconnected, internal;
- ``mlbuild_requests_in_flight``: prediction requests admitted and not yet answered (being read,
  waiting for a thread or predicting);
- ``mlbuild_predictions_total{output,class}`` for label outputs, ``mlbuild_prediction_value`` (a
  histogram) for numeric ones;
- ``mlbuild_input_rows_total{input}``, ``mlbuild_input_feature_sum{feature}`` and
  ``mlbuild_input_feature_squares_sum{feature}``: with ``rate()`` they give each feature's mean and
  variance over any window, to watch inputs drift away from the training data.

With several workers each process writes its snapshot to a shared folder every second and the
worker that answers a scrape adds up all of them. Predictions are observed on the server's pool
threads and everything else on its event loop, so every update and snapshot holds one lock.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mlbuild import atomic

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
VALUE_BUCKETS = (-1000.0, -100.0, -10.0, -1.0, -0.1, 0.0, 0.1, 1.0, 10.0, 100.0, 1000.0)
MAX_CLASSES = 100  # distinct labels counted per output; the rest go to class="other"


class Metrics:
    def __init__(self, signature_inputs: dict[str, tuple[int, ...]]) -> None:
        self.requests: dict[str, int] = {}  # "route\tstatus" → count
        self.latency: dict[str, list[float]] = {}  # route → bucket counts…, sum, count
        self.errors: dict[str, int] = {}  # "route\tkind" → count
        self.classes: dict[str, int] = {}  # "output\tclass" → count
        self.values: dict[str, list[float]] = {}  # output → bucket counts…, sum, count
        self.rows: dict[str, int] = {}
        self.sums: dict[str, np.ndarray[Any, Any]] = {}
        self.squares: dict[str, np.ndarray[Any, Any]] = {}
        self.gauges: dict[str, int] = {"in_flight": 0}
        self.version = 0  # bumped on every change, so an unchanged snapshot is not rewritten
        self.shapes = signature_inputs
        self.lock = threading.Lock()

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        key = f"{route}\t{status}"
        with self.lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            hist = self.latency.get(route)
            if hist is None:
                hist = self.latency[route] = [0.0] * (len(LATENCY_BUCKETS) + 2)
            hist[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            hist[-2] += seconds
            hist[-1] += 1
            self.version += 1

    def observe_error(self, route: str, kind: str) -> None:
        key = f"{route}\t{kind}"
        with self.lock:
            self.errors[key] = self.errors.get(key, 0) + 1

    def set_in_flight(self, count: int) -> None:
        with self.lock:
            self.gauges["in_flight"] = count
            self.version += 1

    def observe_inputs(self, inputs: dict[str, np.ndarray[Any, Any]]) -> None:
        with self.lock:
            self._observe_inputs(inputs)

    def observe_outputs(self, outputs: dict[str, np.ndarray[Any, Any]]) -> None:
        with self.lock:
            self._observe_outputs(outputs)

    def _observe_inputs(self, inputs: dict[str, np.ndarray[Any, Any]]) -> None:
        for name, array in inputs.items():
            if array.dtype.kind not in "fiub" or array.size == 0:
                continue
            rows = array.shape[0]
            flat = array.reshape(rows, -1).astype(np.float64, copy=False)
            if name in self.sums:
                self.sums[name] += flat.sum(axis=0)
                self.squares[name] += np.einsum("ij,ij->j", flat, flat)
            else:
                self.sums[name] = flat.sum(axis=0)
                self.squares[name] = np.einsum("ij,ij->j", flat, flat)
            self.rows[name] = self.rows.get(name, 0) + rows

    def _observe_outputs(self, outputs: dict[str, np.ndarray[Any, Any]]) -> None:
        for name, array in outputs.items():
            kind = array.dtype.kind
            if kind == "f":
                hist = self.values.get(name)
                if hist is None:
                    hist = self.values[name] = [0.0] * (len(VALUE_BUCKETS) + 2)
                flat = array.ravel()
                if flat.size == 1:
                    value = float(flat[0])
                    hist[bisect.bisect_left(VALUE_BUCKETS, value)] += 1
                    hist[-2] += value
                else:
                    counts = np.bincount(
                        np.searchsorted(VALUE_BUCKETS, flat), minlength=len(VALUE_BUCKETS) + 1
                    )
                    for i, c in enumerate(counts.tolist()):
                        hist[i] += c
                    hist[-2] += float(flat.sum())
                hist[-1] += flat.size
                continue
            labels = array.ravel().tolist()
            if len(labels) == 1:
                self._count_class(name, labels[0], 1)
            else:
                for label, count in Counter(labels).items():  # counts in C
                    self._count_class(name, label, count)

    def _count_class(self, output: str, label: Any, count: int) -> None:
        if isinstance(label, bytes):
            label = label.decode(errors="replace")
        key = f"{output}\t{label}"
        if key not in self.classes and len(self.classes) >= MAX_CLASSES:
            key = f"{output}\tother"
        self.classes[key] = self.classes.get(key, 0) + count

    def snapshot(self) -> dict[str, Any]:
        """A copy of every figure, taken under the lock (safe to read while requests run)."""
        with self.lock:
            return {
                "requests": dict(self.requests),
                "latency": {k: list(v) for k, v in self.latency.items()},
                "errors": dict(self.errors),
                "classes": dict(self.classes),
                "values": {k: list(v) for k, v in self.values.items()},
                "rows": dict(self.rows),
                "sums": {k: v.tolist() for k, v in self.sums.items()},
                "squares": {k: v.tolist() for k, v in self.squares.items()},
                "gauges": dict(self.gauges),
            }

    def write(self, path: Path) -> None:
        """Write the snapshot to ``path`` atomically (for the other workers' scrapes)."""
        # no flush to disk: the snapshot is rewritten every few seconds and read only by the
        # other workers of this server, so a crash loses nothing anyone keeps
        with atomic.replacing(path, sync=False) as tmp:
            tmp.write_text(json.dumps(self.snapshot()), encoding="utf-8")

    def render(self, folder: Path | None = None, own: str | None = None) -> str:
        """The Prometheus text exposition of this process's metrics plus, when ``folder`` is
        given, the other workers' snapshots in it (all files but ``own``)."""
        total = self.snapshot()
        if folder is not None:
            for path in sorted(folder.glob("*.json")):
                if path.name == own:
                    continue
                try:
                    other = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue  # being replaced right now; next scrape has it
                total = _merge(total, other)
        return _render(total, self.shapes)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for section in a.keys() | b.keys():
        left, right = a.get(section, {}), b.get(section, {})
        out = dict(left)
        for key, value in right.items():
            if key not in out:
                out[key] = value
            elif isinstance(value, list):
                out[key] = [x + y for x, y in zip(out[key], value, strict=True)]
            else:
                out[key] = out[key] + value
        merged[section] = out
    return merged


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _render(snap: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> str:
    out: list[str] = []

    def head(name: str, kind: str, text: str) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")

    head("mlbuild_requests_total", "counter", "HTTP requests by route and status.")
    for key, count in sorted(snap["requests"].items()):
        route, status = key.split("\t")
        out.append(f'mlbuild_requests_total{{route="{route}",status="{status}"}} {count}')
    head("mlbuild_request_duration_seconds", "histogram", "Time to answer a request.")
    for route, hist in sorted(snap["latency"].items()):
        _histogram(
            out, "mlbuild_request_duration_seconds", f'route="{route}"', LATENCY_BUCKETS, hist
        )
    head("mlbuild_errors_total", "counter", "Requests answered with an error, by kind.")
    for key, count in sorted(snap["errors"].items()):
        route, kind = key.split("\t")
        out.append(f'mlbuild_errors_total{{route="{route}",kind="{kind}"}} {count}')
    head("mlbuild_predictions_total", "counter", "Predicted labels by output and class.")
    for key, count in sorted(snap["classes"].items()):
        output, label = key.split("\t", 1)
        out.append(
            f'mlbuild_predictions_total{{output="{_label(output)}",class="{_label(label)}"}} '
            f"{count}"
        )
    head("mlbuild_prediction_value", "histogram", "Predicted numeric values by output.")
    for output, hist in sorted(snap["values"].items()):
        _histogram(
            out, "mlbuild_prediction_value", f'output="{_label(output)}"', VALUE_BUCKETS, hist
        )
    head(
        "mlbuild_requests_in_flight",
        "gauge",
        "Prediction requests admitted and not yet answered (read, queued or predicting).",
    )
    out.append(f"mlbuild_requests_in_flight {snap.get('gauges', {}).get('in_flight', 0)}")
    head("mlbuild_input_rows_total", "counter", "Rows received, by input.")
    for name, rows in sorted(snap["rows"].items()):
        out.append(f'mlbuild_input_rows_total{{input="{_label(name)}"}} {rows}')
    for metric, section, text in (
        ("mlbuild_input_feature_sum", "sums", "Sum of each input feature's values."),
        ("mlbuild_input_feature_squares_sum", "squares", "Sum of each feature's squared values."),
    ):
        head(metric, "counter", text)
        for name, values in sorted(snap[section].items()):
            columnar = len(shapes.get(name, (-1,))) == 1
            for j, value in enumerate(values):
                feature = name if columnar else f"{name}[{j}]"
                out.append(
                    f'{metric}{{input="{_label(name)}",feature="{_label(feature)}"}} {value!r}'
                )
    return "\n".join(out) + "\n"


def _histogram(
    out: list[str], name: str, labels: str, buckets: tuple[float, ...], hist: list[float]
) -> None:
    running = 0.0
    for bound, count in zip(buckets, hist, strict=False):
        running += count
        out.append(f'{name}_bucket{{{labels},le="{bound}"}} {int(running)}')
    running += hist[len(buckets)]
    out.append(f'{name}_bucket{{{labels},le="+Inf"}} {int(running)}')
    out.append(f"{name}_sum{{{labels}}} {hist[-2]!r}")
    out.append(f"{name}_count{{{labels}}} {int(hist[-1])}")
