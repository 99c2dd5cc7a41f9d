"""Secret masking: the one place that hides the values of ``secrets:`` from all mlbuild writes.

Every sink goes through it: a step's output (terminal and ``.mlbuild/logs/``), step notes and
messages, metrics read from files, action-cache entries, run records, ``run --json``, error
messages and crash logs.

A URL's credentials are the other secret mlbuild meets (a run store's ``MLBUILD_STORE``):
:func:`without_password` drops them from one mlbuild keeps.

What is masked: each secret's whole value and, for a multi-line value (a PEM key, a JSON service
account), each of its lines of at least :data:`MIN_LINE` characters on its own — a step may print
a key line by line, or JSON-escaped on one line. Shorter lines (``{``, ``}``) would mask ordinary
text everywhere and are not secret on their own. Masking covers the union of every occurrence of
every pattern, so overlapping secrets leave no visible piece.

A step's output arrives in chunks that may split a secret anywhere: :class:`StreamMasker` holds back
the end of a chunk while it could still be the start of a secret, and never more.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

MASK = "***"
MIN_LINE = 8

_S = TypeVar("_S", str, bytes)


class Secrets:
    """The values to mask, and how to mask text, nested data and streams with them."""

    def __init__(self, values: Iterable[str] = (), names: Mapping[str, str] | None = None) -> None:
        self.values = frozenset(v for v in values if v.strip())
        self.names = dict(names or {})  # variable name → value, when known
        patterns: set[str] = set()
        for value in self.values:
            patterns.add(value)
            if "\n" in value:
                patterns.update(
                    line.strip() for line in value.splitlines() if len(line.strip()) >= MIN_LINE
                )
        self._text = sorted(patterns, key=len, reverse=True)
        # os.environ holds undecodable bytes as surrogates: surrogateescape gives the raw bytes back
        self._bytes = [p.encode("utf-8", "surrogateescape") for p in self._text]

    @classmethod
    def from_env(cls, names: Iterable[str], environ: Mapping[str, str] | None = None) -> Secrets:
        """The current values of the environment variables ``names`` (unset ones are skipped)."""
        env = os.environ if environ is None else environ
        named = {name: env[name] for name in names if env.get(name)}
        return cls(named.values(), named)

    def __bool__(self) -> bool:
        return bool(self._text)

    def __or__(self, other: Secrets) -> Secrets:
        return Secrets(self.values | other.values, {**self.names, **other.names})

    def found_in(self, value: Any) -> list[str]:
        """The names of the secrets whose values occur in ``value`` (see :meth:`data`)."""
        return sorted(n for n, v in self.names.items() if Secrets([v]).data(value) != value)

    def text(self, text: str) -> str:
        """``text`` with every secret occurrence replaced by ``***``."""
        if not self._text:
            return text
        return _render(text, _cover(text, self._text), MASK)

    def data(self, value: Any) -> Any:
        """``value`` (JSON-like: dicts, lists, strings, numbers) with secrets masked in every string
        and key; a number whose written form holds a secret becomes ``***``."""
        if not self._text:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return MASK if self.text(repr(value)) != repr(value) else value
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value

    def stream(self) -> StreamMasker:
        """A masker for one byte stream (a step's output)."""
        return StreamMasker(self._bytes)


class StreamMasker:
    """Masks a byte stream fed in arbitrary chunks; what :meth:`feed` returns is final.

    At most the longest pattern's length is held back. A masked run that reaches the end of what
    is released is carried over as "the first N held bytes are masked", so its end is masked even
    when it matches nothing on its own, and the stream shows one ``***`` for it, not two.
    """

    def __init__(self, patterns: list[bytes]) -> None:
        self._patterns = patterns
        self._held = b""
        self._covered = 0  # the first bytes of _held that belong to a masked run already begun
        self._open = False  # what was released last ended inside a masked run

    def feed(self, chunk: bytes) -> bytes:
        """The masked bytes of ``chunk`` that no later chunk can change."""
        if not self._patterns:
            return chunk
        data = self._held + chunk
        return self._release(data, len(data) - _open_prefix(data, self._patterns))

    def flush(self) -> bytes:
        """What is still held back, masked: the stream has ended."""
        data, self._held = self._held, b""
        return self._release(data, len(data)) if data else b""

    def _release(self, data: bytes, cut: int) -> bytes:
        if cut == 0:  # all of it may still be the start of a secret
            self._held = data
            return b""
        spans = _cover(data, self._patterns)
        if self._covered:
            spans = _merge([(0, self._covered), *spans])
        released = [(s, min(e, cut)) for s, e in spans if s < cut]
        self._covered = max((e - cut for s, e in spans if s < cut < e), default=0)
        joined = self._open and bool(released) and released[0][0] == 0
        self._open = bool(released) and released[-1][1] == cut
        self._held = data[cut:]
        out = _render(data[:cut], released, MASK.encode())
        return out[len(MASK) :] if joined else out


def _cover(text: _S, patterns: list[_S]) -> list[tuple[int, int]]:
    """The spans of ``text`` covered by any occurrence of any pattern, merged and sorted."""
    spans = []
    for pattern in patterns:
        at = text.find(pattern)
        while at != -1:
            spans.append((at, at + len(pattern)))
            at = text.find(pattern, at + 1)
    return _merge(spans)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans joined, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _render(text: _S, runs: list[tuple[int, int]], mask: _S) -> _S:
    if not runs:
        return text
    pieces = []
    last = 0
    for start, end in runs:
        pieces += [text[last:start], mask]
        last = end
    pieces.append(text[last:])
    return text[:0].join(pieces)


def _open_prefix(data: bytes, patterns: list[bytes]) -> int:
    """The length of the longest end of ``data`` that is a proper start of some pattern."""
    longest = 0
    for pattern in patterns:
        first = pattern[:1]
        at = data.find(first, max(0, len(data) - len(pattern) + 1))
        while at != -1:
            if pattern.startswith(data[at:]):
                longest = max(longest, len(data) - at)
                break  # the earliest start is the longest end for this pattern
            at = data.find(first, at + 1)
    return longest


# The secrets of the recipe in use, for what is written far from the run that knows them: the
# top-level error message and the crash log (a bug can surface anywhere).
_known = [Secrets()]
_known_lock = threading.Lock()


def remember(secrets: Secrets) -> None:
    """Add ``secrets`` to those every later :func:`known` masking hides."""
    with _known_lock:
        _known[0] = _known[0] | secrets


def known() -> Secrets:
    """Every secret remembered in this process so far."""
    return _known[0]


def without_password(url: str, *, mask: str | None = None) -> str:
    """``url`` without its password: dropped, for a URL kept where others may read it (the
    cache's list of workspaces), or replaced by ``mask`` (:data:`MASK`) for one shown in a
    message. Both places a libpq URL holds one count: the user part (``user:pw@host``) and a
    ``password=`` query parameter. The rest is kept as written (``[::1]:5432``, ``sqlite:////x``).
    """
    if "@" not in url and "password" not in url.lower():
        return url  # nothing to drop; and every run gets here, so no urllib import for it
    from urllib.parse import parse_qsl, urlencode, urlsplit

    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    netloc = parts.netloc
    if at and colon:
        shown = user if mask is None else f"{user}:{mask}"
        netloc = f"{shown}@{hostport}" if shown else hostport
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v if mask is None else mask) for k, v in pairs if k.lower() == "password"]
    query = parts.query
    if kept:
        others = [(k, v) for k, v in pairs if k.lower() != "password"]
        query = urlencode(others + ([] if mask is None else kept), safe="*")
    # edited in place: urlunsplit would rewrite what it need not (`sqlite:////x` loses a slash)
    if netloc != parts.netloc:
        url = url.replace(f"//{parts.netloc}", f"//{netloc}", 1)
    if query != parts.query:
        head, _, rest = url.partition("?")
        url = head + (f"?{query}" if query else "") + rest[len(parts.query) :]
    return url
