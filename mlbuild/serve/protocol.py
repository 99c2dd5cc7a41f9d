"""uvicorn's httptools protocol with the two limits it lacks before a request reaches the app: a
time limit and a size limit on the request line and headers.

uvicorn times out idle keep-alive connections, but a client that opens a connection and sends its
headers a byte at a time (slowloris) holds it forever, and nothing bounds the headers' size. Here
each request's head must be complete within ``header_timeout`` seconds of its first byte (of the
connection's opening, for the first request) and within ``MAX_HEAD_BYTES``; otherwise the client
gets a 408 or a 431 and the connection is closed. (The body's timeout is the app's:
:class:`mlbuild.serve.app.PredictionApp` reads it.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024


class GuardedHttpProtocol(HttpToolsProtocol):
    """Pass to uvicorn as ``http=functools.partial(GuardedHttpProtocol, header_timeout=S)``."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._in_head = False  # a request has begun and its headers are not complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(
                    b"431 Request Header Fields Too Large",
                    f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes",
                )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        if self._head_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._in_head:  # opened and never used: nobody is waiting for an answer
            self.transport.close()
            return
        self._refuse(
            b"408 Request Timeout",
            f"the request headers did not arrive within {self.header_timeout:g} s",
        )

    def _refuse(self, status: bytes, message: str) -> None:
        """Answer the request whose head is incomplete, and close the connection."""
        self._disarm()
        self._in_head = False
        if self.cycle is None or self.cycle.response_complete:  # no answer is being written
            body = b'{"error":"' + message.encode() + b'"}'
            self.transport.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + body
            )
        self.transport.close()
