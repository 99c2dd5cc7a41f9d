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

The event loop only routes, checks headers and moves bytes: a POST is admitted by the
:class:`PredictPool` (or refused with a 503), its body read within ``body_timeout`` and the size
limit, and then decompressed, decoded, predicted and encoded on a pool thread. GET routes answer
on the loop, so probes and scrapes never wait behind a prediction.
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
from mlbuild.serve.body import codings, decompress, text
from mlbuild.serve.errors import InvalidInput
from mlbuild.serve.metrics import Metrics
from mlbuild.serve.pool import PredictPool
from mlbuild.serve.runtime import ModelRuntime

log = logging.getLogger("mlbuild.serve")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json"
_OPEN = {"/v2/health/live", "/v2/health/ready", "/ping", "/health"}  # probes need no token
# The body types each POST route reads (b"": none sent, as tritonclient and curl -T do).
_INFER_TYPES = frozenset((b"", JSON, b"application/octet-stream"))
_CSV_TYPES = frozenset((b"text/csv", b"application/csv"))
_INVOCATION_TYPES = frozenset((b"", JSON)) | _CSV_TYPES
_ERROR_KINDS = {
    400: "invalid_input",
    401: "unauthorized",
    404: "not_found",
    405: "not_found",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
    503: "overloaded",
}
_CLOSE = (b"connection", b"close")


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON
    extra: tuple[tuple[bytes, bytes], ...] = ()


class _Request:
    __slots__ = ("body", "codings", "content_type", "handler", "header_length", "route")

    def __init__(
        self,
        route: str,
        body: bytes,
        content_type: bytes,
        header_length: bytes | None,
        codings: tuple[str, ...] = (),
        handler: Handler | None = None,
    ) -> None:
        self.route = route
        self.body = body
        self.content_type = content_type
        self.header_length = header_length
        self.codings = codings
        self.handler = handler


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
        threads: int = 1,
        queue: int = 64,
        body_timeout: float = 30.0,
    ) -> None:
        self.runtime = runtime
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.pool = PredictPool(self._handle, threads, queue)
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
        self.accepts = {"/invocations": _INVOCATION_TYPES}
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
        except InvalidInput as exc:
            self.metrics.observe_error(route, _ERROR_KINDS.get(exc.status, "invalid_input"))
            response = _error(route, exc.status, exc.message, exc.headers)
        except Exception:
            log.exception("internal error answering %s %s", method, route)
            self.metrics.observe_error(route, "internal")
            response = _error(route, 500, "internal error; the server log has the details")
        if response is None:  # the client left before sending its whole body
            self.metrics.observe_error(route, "disconnected")
            return
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
    ) -> Response | None:
        length = None
        content_type = b""
        authorization = b""
        header_length = None
        encoding = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"authorization":
                authorization = value
            elif name == b"inference-header-content-length":
                header_length = value
            elif name == b"content-encoding":
                encoding = value
        if (
            self.token is not None
            and path not in _OPEN
            and not hmac.compare_digest(authorization, self.token)
        ):
            raise InvalidInput(
                "missing or wrong bearer token; send `Authorization: Bearer TOKEN`",
                401,
                ((b"www-authenticate", b"Bearer"),),
            )
        if found is None:
            if path in self._paths:
                allowed = sorted(m for m, p in self.routes if p == path)
                raise InvalidInput(f"{method} is not allowed here; use {', '.join(allowed)}", 405)
            raise InvalidInput(self._not_found(path), 404)
        if method != "POST":
            return found[1](_Request(route, b"", content_type, None))
        # Everything the headers alone can refuse is refused before the body is read.
        kind = content_type.split(b";", 1)[0].strip().lower()
        accepted = self.accepts.get(path, _INFER_TYPES)
        if kind not in accepted:
            raise InvalidInput(_unsupported_type(kind, accepted), 415)
        applied = codings(encoding) if encoding is not None else ()
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            raise InvalidInput(self._too_large(), 413)
        if not self.pool.admit():
            raise InvalidInput(
                f"the server is busy: {self.pool.capacity} requests are already running or "
                f"waiting (--threads {self.pool.threads}, --queue "
                f"{self.pool.capacity - self.pool.threads}); retry in a moment",
                503,
                ((b"retry-after", b"1"),),
            )
        self.metrics.set_in_flight(self.pool.admitted)
        try:
            body = await self._read(receive)
            if body is None:
                return None
            request = _Request(route, body, kind, header_length, applied, found[1])
            return await self.pool.run(request)
        finally:
            self.pool.leave()
            self.metrics.set_in_flight(self.pool.admitted)

    async def _read(self, receive: Receive) -> bytes | None:
        """The request body within the size limit and ``body_timeout``; None if the client left."""
        # A bare timer rather than asyncio.timeout(): a third of the cost, on every request.
        task = asyncio.current_task()
        assert task is not None
        expired: list[bool] = []
        timer = asyncio.get_running_loop().call_later(self.body_timeout, _expire, task, expired)
        try:
            message = await receive()
            body: bytes = message.get("body", b"")
            chunks = [body]
            size = len(body)
            while message.get("more_body", False):
                message = await receive()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    raise InvalidInput(self._too_large(), 413, (_CLOSE,))
                chunks.append(chunk)
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            raise InvalidInput(
                f"the request body did not arrive within {self.body_timeout:g} s (--body-timeout)",
                408,
                (_CLOSE,),
            ) from None
        finally:
            timer.cancel()
        if message["type"] == "http.disconnect":
            return None
        if size > self.max_body:
            raise InvalidInput(self._too_large(), 413)
        return body if len(chunks) == 1 else b"".join(chunks)

    def _handle(self, request: _Request) -> Response:
        """On a pool thread: undo the Content-Encoding, then the route's handler."""
        if request.codings:
            request.body = decompress(request.body, request.codings, self.max_body)
        assert request.handler is not None
        return request.handler(request)

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

    # handlers: GET ones run on the event loop, POST ones on a pool thread

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
        if request.content_type in _CSV_TYPES:
            inputs = mlflow.decode_csv(self.runtime, text(request.body, "CSV"))
        else:
            inputs = mlflow.decode_json(self.runtime, request.body)
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


def _expire(task: asyncio.Task[Any], expired: list[bool]) -> None:
    expired.append(True)
    task.cancel()


def _unmatched(path: str) -> str:
    """A metrics label for a path no route matched (bounded: never the raw path)."""
    return "/v2/other" if path.startswith("/v2") else "other"


def _unsupported_type(kind: bytes, accepted: frozenset[bytes]) -> str:
    shown = kind.decode("latin-1").encode("ascii", "backslashreplace").decode()[:60]
    if accepted >= _CSV_TYPES:
        return f"unsupported content type '{shown}'; send application/json or text/csv"
    return (
        f"unsupported content type '{shown}'; send application/json (or Triton's binary "
        "tensors as application/octet-stream with Inference-Header-Content-Length)"
    )


def _error(
    route: str, status: int, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> Response:
    if route == "/invocations" or route in ("/ping", "/health"):
        code = {401: "UNAUTHENTICATED", 503: "TEMPORARILY_UNAVAILABLE"}.get(
            status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST"
        )
        body = orjson.dumps({"error_code": code, "message": message})
    else:
        body = orjson.dumps({"error": message})
    return Response(status, body, JSON, extra)
