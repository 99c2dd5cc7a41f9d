"""Request bodies before a protocol reads them: ``Content-Encoding`` (gzip, deflate) undone within
the size limit, and JSON or UTF-8 text decoded with errors that say what to fix.

The size limit (``--max-body-size``) applies to the bytes received and again to the bytes a
compressed body inflates to: inflating stops one byte past the limit, so a small "zip bomb" costs
at most the limit in memory and the time to inflate that much, never its full size.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from mlbuild.serve.errors import InvalidInput

# Content-Encoding token → zlib window bits; deflate is the zlib format (RFC 9110 8.4.1.2), but
# some clients send a raw deflate stream, told apart by the zlib header check.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ACCEPT_ENCODING = (b"accept-encoding", b"gzip, deflate")


def codings(header: bytes) -> tuple[str, ...]:
    """The codings a ``Content-Encoding`` header lists, in the order they were applied.

    Raises :class:`InvalidInput` (415, with ``Accept-Encoding``) for one we cannot undo."""
    found = []
    for token in header.split(b","):
        name = token.strip().lower().decode("latin-1")
        if name in ("", "identity"):
            continue
        if name not in _WBITS:
            raise InvalidInput(
                f"unsupported Content-Encoding '{_printable(name)}'; send the body uncompressed, "
                "or compressed with gzip or deflate",
                status=415,
                headers=(ACCEPT_ENCODING,),
            )
        found.append(name)
    return tuple(found)


def decompress(body: bytes, applied: tuple[str, ...], limit: int) -> bytes:
    """``body`` with the codings ``applied`` undone, refusing (413) more than ``limit`` bytes."""
    for coding in reversed(applied):
        body = _inflate(body, coding, limit)
    return body


def parse_json(body: bytes | memoryview) -> Any:
    """The JSON value of ``body``, or InvalidInput saying why it is not one."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not body:
            raise InvalidInput("the body is empty; expected a JSON object") from None
        hint = _compressed_hint(body)
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError as bad:
            raise InvalidInput(
                f"the body is not valid JSON: byte 0x{body[bad.start]:02x} at offset "
                f"{bad.start} is not UTF-8{hint}"
            ) from None
        raise InvalidInput(f"the body is not valid JSON: {exc}{hint}") from None


def mentions_bool(text: bytes) -> bool:
    """Whether JSON ``text`` may hold ``true`` or ``false`` (numpy silently turns ``[true, 2]``
    into numbers, so the decoders look for booleans only when this says so).

    It hops from one ``t`` or ``f`` to the next with memchr-fast ``find``: digits and the
    protocols' keys hold few. (``b"true" in text`` takes 30 times longer on a body of digits.)"""
    for char, word in ((b"t", b"true"), (b"f", b"false")):
        at = text.find(char)
        while at != -1:
            if text.startswith(word, at):
                return True
            at = text.find(char, at + 1)
    return False


def text(body: bytes, what: str) -> str:
    """``body`` as UTF-8 text, or InvalidInput naming the first byte that is not."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the {what} body is not UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}"
            f"{_compressed_hint(body)}; send UTF-8 text"
        ) from None


def _inflate(data: bytes, coding: str, limit: int) -> bytes:
    wbits = _WBITS[coding]
    if coding == "deflate" and not _is_zlib(data):
        wbits = -zlib.MAX_WBITS
    out: list[bytes] = []
    size = 0
    pending = data
    while True:
        decoder = zlib.decompressobj(wbits)
        while not decoder.eof:
            try:
                chunk = decoder.decompress(pending, limit + 1 - size)
            except zlib.error as exc:
                raise InvalidInput(
                    f"the body is not valid {coding} data ({exc}); send what Content-Encoding says"
                ) from None
            pending = decoder.unconsumed_tail
            size += len(chunk)
            if size > limit:
                raise InvalidInput(
                    f"the request body inflates to more than the limit of {limit} bytes "
                    "(--max-body-size)",
                    status=413,
                )
            if not chunk and not pending:
                raise InvalidInput(f"the {coding} body is cut short; send all of it")
            out.append(chunk)
        pending = decoder.unused_data
        if not pending:
            return b"".join(out)
        if wbits != _WBITS["gzip"]:  # only gzip may hold several members, one after another
            raise InvalidInput(f"{len(pending)} bytes follow the end of the {coding} data")


def _is_zlib(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0


def _compressed_hint(body: bytes | memoryview) -> str:
    head = bytes(body[:2])
    if head == b"\x1f\x8b":
        return "; it looks gzip-compressed: send it with `Content-Encoding: gzip`"
    if len(head) == 2 and _is_zlib(head):
        return "; it looks deflate-compressed: send it with `Content-Encoding: deflate`"
    return ""


def _printable(name: str) -> str:
    shown = name.encode("ascii", "backslashreplace").decode()
    return shown if len(shown) <= 40 else shown[:37] + "..."
