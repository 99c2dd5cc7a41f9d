"""The prediction server: a hand-written ASGI application (no framework — routing one model's
dozen paths is a dict lookup, and Starlette's request objects cost more CPU than the checks).

Routes (``NAME`` is the model's name; each ``/v2/models/NAME`` route also answers under
``/v2/models/NAME/versions/VERSION``):

=======  ==========================  ======================================================
GET      /v2/health/live             200 while the process runs (Open Inference Protocol v2)
GET      /v2/health/ready            200 once the model is loaded
GET      /v2                         server metadata
GET      /v2/models/NAME             model metadata: versions, platform, inputs, outputs
GET      /v2/models/NAME/ready       200 when the model is ready
POST     /v2/models/NAME/infer       inference; JSON or Triton's binary tensor data
POST     /invocations                MLflow scoring formats (JSON, CSV)
GET      /ping, /health              MLflow's health check
GET      /metrics                    Prometheus metrics
=======  ==========================  ======================================================

Errors are JSON — ``{"error": MESSAGE}`` on ``/v2`` routes, ``{"error_code", "message"}`` on
MLflow's — and never contain a traceback: an unexpected exception is logged on the server and the
client gets a 500 with a generic message. With a token, every route but the health checks needs
``Authorization: Bearer TOKEN`` (compared in constant time).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mlbuild import __version__
from mlbuild.serve import mlflow, oip
from mlbuild.serve.metrics import Metrics
from mlbuild.serve.runtime import InvalidInput, ModelRuntime

log = logging.getLogger("mlbuild.serve")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json"
_OPEN = {"/v2/health/live", "/v2/health/ready", "/ping", "/health"}  # probes need no token


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON
    extra: tuple[tuple[bytes, bytes], ...] = ()


class _Request:
    __slots__ = ("body", "content_type", "header_length", "route")

    def __init__(
        self, route: str, body: bytes, content_type: bytes, header_length: int | None
    ) -> None:
        self.route = route
        self.body = body
        self.content_type = content_type
        self.header_length = header_length


Handler = Callable[[_Request], Response]


class PredictionApp:
    """The ASGI application for one loaded model."""

    def __init__(
        self,
        runtime: ModelRuntime,
        *,
        max_body: int,
        token: str | None,
        metrics_dir: Path | None = None,
    ) -> None:
        self.runtime = runtime
        self.max_body = max_body
        self.token = f"Bearer {token}".encode() if token else None
        self.metrics = Metrics({t.name: t.shape for t in runtime.signature.inputs})
        self.metrics_dir = metrics_dir
        self.metrics_file = f"{os.getpid()}.json"
        self.routes: dict[tuple[str, str], tuple[str, Handler]] = {}
        base = f"/v2/models/{runtime.name}"
        for prefix, label in (
            (base, "/v2/models/{name}"),
            (f"{base}/versions/{runtime.version}", "/v2/models/{name}/versions/{version}"),
        ):
            self.routes["GET", prefix] = (label, self._model_metadata)
            self.routes["GET", f"{prefix}/ready"] = (f"{label}/ready", self._empty)
            self.routes["POST", f"{prefix}/infer"] = (f"{label}/infer", self._infer)
        for path, handler in (
            ("/v2/health/live", self._empty),
            ("/v2/health/ready", self._empty),
            ("/v2", self._server_metadata),
            ("/ping", self._empty),
            ("/health", self._empty),
            ("/metrics", self._metrics),
        ):
            self.routes["GET", path] = (path, handler)
        self.routes["POST", "/invocations"] = ("/invocations", self._invocations)
        self._paths = {path for _, path in self.routes}
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        found = self.routes.get((method, path))
        route = found[0] if found else _unmatched(path)
        try:
            response = await self._answer(scope, receive, found, route, path, method)
        except Exception:
            log.exception("internal error answering %s %s", method, route)
            self.metrics.observe_error(route, "internal")
            response = _error(route, 500, "internal error; the server log has the details")
        headers = [
            (b"content-type", response.content_type),
            (b"content-length", str(len(response.body)).encode()),
            *response.extra,
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
        self.metrics.observe_request(route, response.status, time.perf_counter() - started)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        found: tuple[str, Handler] | None,
        route: str,
        path: str,
        method: str,
    ) -> Response:
        length = None
        content_type = b""
        authorization = b""
        header_length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"authorization":
                authorization = value
            elif name == b"inference-header-content-length":
                header_length = value
        if (
            self.token is not None
            and path not in _OPEN
            and not hmac.compare_digest(authorization, self.token)
        ):
            self.metrics.observe_error(route, "unauthorized")
            return _error(
                route,
                401,
                "missing or wrong bearer token; send `Authorization: Bearer TOKEN`",
                ((b"www-authenticate", b"Bearer"),),
            )
        if found is None:
            self.metrics.observe_error(route, "not_found")
            if path in self._paths:
                allowed = sorted(m for m, p in self.routes if p == path)
                return _error(route, 405, f"{method} is not allowed here; use {', '.join(allowed)}")
            return _error(route, 404, self._not_found(path))
        body: bytes | None = b""
        if method == "POST":
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                self.metrics.observe_error(route, "too_large")
                return _error(route, 413, self._too_large())
            body = await self._read(receive)
            if body is None:
                self.metrics.observe_error(route, "too_large")
                return _error(route, 413, self._too_large())
        try:
            hlen = int(header_length) if header_length is not None else None
        except ValueError:
            hlen = -1
        try:
            return found[1](_Request(route, body or b"", content_type, hlen))
        except InvalidInput as exc:
            self.metrics.observe_error(route, "invalid_input")
            return _error(route, exc.status, exc.message)

    async def _read(self, receive: Receive) -> bytes | None:
        """The request body, or None once it passes the size limit."""
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return body if len(body) <= self.max_body else None
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> str:
        return (
            f"the request body is larger than the limit of {self.max_body} bytes (--max-body-size)"
        )

    def _not_found(self, path: str) -> str:
        name = self.runtime.name
        if path.startswith("/v2/models/"):
            rest = path.removeprefix("/v2/models/")
            asked = rest.split("/", 1)[0]
            if asked != name:
                return f"unknown model '{asked}'; this server serves '{name}'"
            if "/versions/" in path:
                version = rest.split("/versions/", 1)[1].split("/", 1)[0]
                return (
                    f"model '{name}' has no version '{version}'; it serves version "
                    f"'{self.runtime.version}'"
                )
        return f"no route {path}; see /v2 (Open Inference Protocol), /invocations, /metrics"

    # handlers: synchronous, they run to completion between two awaits

    def _empty(self, request: _Request) -> Response:
        return Response(200, b"")

    def _server_metadata(self, request: _Request) -> Response:
        body = {"name": "mlbuild", "version": __version__, "extensions": ["binary_tensor_data"]}
        return Response(200, orjson.dumps(body))

    def _model_metadata(self, request: _Request) -> Response:
        return Response(200, orjson.dumps(self.runtime.metadata()))

    def _infer(self, request: _Request) -> Response:
        parsed, inputs = oip.decode_request(self.runtime, request.body, request.header_length)
        outputs = self._predict(inputs)
        body, header_length = oip.encode_response(self.runtime, parsed, outputs)
        if header_length is None:
            return Response(200, body)
        return Response(
            200,
            body,
            b"application/octet-stream",
            ((b"inference-header-content-length", str(header_length).encode()),),
        )

    def _invocations(self, request: _Request) -> Response:
        kind = request.content_type.split(b";", 1)[0].strip().lower()
        if kind in (b"text/csv", b"application/csv"):
            try:
                text = request.body.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput("the CSV body is not UTF-8") from None
            inputs = mlflow.decode_csv(self.runtime, text)
        elif kind in (b"application/json", b""):
            inputs = mlflow.decode_json(self.runtime, request.body)
        else:
            raise InvalidInput(
                f"unsupported content type '{kind.decode(errors='replace')}'; send "
                "application/json or text/csv",
                status=415,
            )
        return Response(200, mlflow.encode(self._predict(inputs)))

    def _predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
        self.metrics.observe_inputs(inputs)
        outputs = self.runtime.predict(inputs)
        self.metrics.observe_outputs(outputs)
        return outputs

    def _metrics(self, request: _Request) -> Response:
        text = self.metrics.render(self.metrics_dir, self.metrics_file)
        return Response(200, text.encode(), b"text/plain; version=0.0.4; charset=utf-8")

    # lifespan: with several workers, share this worker's metrics every second

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.metrics_dir is not None:
                    self._flusher = asyncio.get_running_loop().create_task(self._flush())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._flusher is not None:
                    self._flusher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._flusher
                    self._write_metrics()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _flush(self) -> None:
        written = -1
        while True:
            await asyncio.sleep(1.0)
            if self.metrics.version != written:
                written = self.metrics.version
                self._write_metrics()

    def _write_metrics(self) -> None:
        if self.metrics_dir is not None:
            try:
                self.metrics.write(self.metrics_dir / self.metrics_file)
            except OSError as exc:
                log.warning("cannot share metrics in %s: %s", self.metrics_dir, exc)


def _unmatched(path: str) -> str:
    """A metrics label for a path no route matched (bounded: never the raw path)."""
    return "/v2/other" if path.startswith("/v2") else "other"


def _error(
    route: str, status: int, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> Response:
    if route == "/invocations" or route in ("/ping", "/health"):
        code = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 413: "BAD_REQUEST"}.get(
            status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST"
        )
        body = orjson.dumps({"error_code": code, "message": message})
    else:
        body = orjson.dumps({"error": message})
    return Response(status, body, JSON, extra)
