"""Reading an S3 remote cache without s3fs: signed GET and HEAD over the standard library.

Why: a CI job restoring from a warm remote reads a few small entries and objects, and s3fs costs
more than that before its first request — importing s3fs, aiobotocore, aiohttp and botocore, then
building botocore's client from its service model (about 0.7 s on a quiet machine, 3 s on a
loaded CI runner; bench/RESULTS.md). A HEAD or GET signed with AWS Signature Version 4 needs only
``hmac``, ``hashlib`` and ``http.client``.

Only reads go this way, and only when the whole configuration is one this module reproduces
exactly: static credentials from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and
``AWS_SESSION_TOKEN``), an endpoint from ``options: {endpoint_url: …}``, ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` (Ceph RGW, MinIO) or AWS's regional one. Anything else — a profile, an
instance role, SSO, other s3fs options — goes through s3fs as before. Writes always go through
s3fs (multipart uploads, checksums), connected on the first write: a read-only merge-request job
never imports it.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import http.client
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbuild.cache.remote.backend import Backend, Opened
from mlbuild.cache.remote.cloud import FsspecBackend

CONNECT_TIMEOUT = 5.0  # as s3fs is configured (cloud.py): a remote that does not answer is skipped
READ_TIMEOUT = 60.0
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
READS_ENV = "MLBUILD_S3_READS"
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-[0-9]+")  # eu-west-3, us-gov-west-1
_OPTIONS = {"endpoint_url"}  # the only s3fs option this module reproduces


@dataclass(frozen=True)
class Credentials:
    key: str
    secret: str
    token: str | None = None


def reader_for(
    url: str, options: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> tuple[str, str, str, Credentials] | None:
    """``(endpoint, bucket, prefix, credentials)`` when the remote at ``url`` (``s3://bucket/p``)
    with ``options`` can be read by :class:`S3Reader`; ``None`` when only s3fs can."""
    env = os.environ if environ is None else environ
    if set(options) - _OPTIONS:
        return None
    key, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if not key or not secret:
        return None  # a profile, a role, SSO: botocore's credential chain
    bucket, _, prefix = url.split("://", 1)[1].partition("/")
    if not bucket:
        return None
    endpoint = (
        str(options.get("endpoint_url") or "")
        or env.get("AWS_ENDPOINT_URL_S3", "")
        or env.get("AWS_ENDPOINT_URL", "")
    )
    if endpoint:
        parsed = urllib.parse.urlsplit(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query:
            return None
    token = env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN") or None
    return endpoint, bucket, prefix.strip("/"), Credentials(key, secret, token)


def connect(url: str, options: Mapping[str, Any], shown: str, package: str) -> Backend:
    """The backend of the fsspec remote ``url``: :class:`S3Reader` where it can read the
    remote (see the module's docstring), else s3fs or the protocol's fsspec library.
    ``MLBUILD_S3_READS=s3fs`` reads through s3fs always (for comparing the two)."""

    def fsspec() -> Backend:
        return FsspecBackend.connect(url, dict(options), shown, package)

    if url.startswith("s3://") and os.environ.get(READS_ENV, "").strip().lower() != "s3fs":
        found = reader_for(url, options)
        if found is not None:
            endpoint, bucket, prefix, credentials = found
            return S3Reader(endpoint, bucket, prefix, credentials, region_of(), shown, fsspec)
    return fsspec()


def region_of(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


class S3Reader:
    """An S3 bucket's keys under ``prefix``, read with signed requests; writes go to the backend
    ``writer()`` returns (s3fs), connected on the first write. See
    :class:`~mlbuild.cache.remote.backend.Backend`."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        prefix: str,
        credentials: Credentials,
        region: str,
        shown: str,
        writer: Callable[[], Backend],
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.credentials = credentials
        self.shown = shown
        self._custom_endpoint = bool(endpoint)
        self._set_region(region, endpoint)
        self._writer_factory = writer
        self._writer: Backend | None = None
        self._lock = threading.Lock()
        # kept-alive connections no request is using, shared by every thread: a directory's
        # objects are fetched by a pool of threads made for that output, and a connection
        # (a TCP and TLS handshake with a real store) outlives them
        self._idle: list[http.client.HTTPConnection] = []
        self.connections = 0  # opened so far: how many handshakes this run paid

    # -- the Backend interface ----------------------------------------------------------------

    @contextlib.contextmanager
    def opened(self, key: str) -> Iterator[Opened]:
        conn, response = self._request("GET", key)
        try:
            if response.status == 404:
                raise FileNotFoundError(f"{self.shown}/{key}")
            _check(response)
            size = _length(response)
            yield Opened(size, response.read)
        finally:
            self._finish(conn, response)

    def size(self, key: str) -> int | None:
        conn, response = self._request("HEAD", key)
        try:
            response.read()  # a HEAD has no body: this only marks the connection free
        finally:
            self._finish(conn, response)
        if response.status == 404:
            return None
        _check(response)
        return _length(response)

    def write(self, key: str, data: bytes) -> None:
        self._writes().write(key, data)

    def upload(self, key: str, source: Path, size: int) -> None:
        self._writes().upload(key, source, size)

    # -- requests -----------------------------------------------------------------------------

    def _writes(self) -> Backend:
        with self._lock:
            if self._writer is None:
                self._writer = self._writer_factory()
            return self._writer

    def _set_region(self, region: str, endpoint: str = "") -> None:
        self.region = region
        url = endpoint or f"https://s3.{region}.amazonaws.com"
        parsed = urllib.parse.urlsplit(url)
        self.scheme = parsed.scheme
        self.host = parsed.hostname or ""
        self.port = parsed.port
        self.base = parsed.path.rstrip("/")
        default = 443 if self.scheme == "https" else 80
        self.netloc = self.host if self.port in (None, default) else f"{self.host}:{self.port}"

    def _request(
        self, method: str, key: str
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """``method`` on ``key``, path-style (``/bucket/prefix/key``): the style every
        S3-compatible store takes, and the connection it was sent on, which the caller hands
        back through :meth:`_finish`. A dropped kept-alive connection is retried once on a new
        one; AWS's answer that the bucket is in another region, once in that region."""
        moved: str | None = None
        fresh = False
        for attempt in range(3):
            path = self._path(key)
            headers = self._signed(method, path)
            conn: http.client.HTTPConnection | None = None
            try:
                conn = self._connection(fresh=fresh)
                conn.request(method, path, headers=headers)
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                _close(conn)
                if attempt:
                    raise
                # the store closed a connection left idle: the others idle as long are likely
                # closed too, so they go, and the retry is on a new one
                self._close_idle()
                fresh = True
                continue
            except OSError as exc:  # refused, timed out, no such host: in botocore's words
                _close(conn)
                url = f"{self.scheme}://{self.netloc}{path}"
                raise ConnectionError(f'Could not connect to the endpoint URL: "{url}"') from exc
            moved = response.getheader("x-amz-bucket-region")
            if moved is not None and not _REGION.fullmatch(moved):
                moved = None  # a host name is built from it: nothing but a region's characters
            if response.status in (301, 400) and moved and moved != self.region and attempt < 2:
                _close(conn)
                if self._custom_endpoint:
                    break
                self._close_idle()  # connections to the old region's host are of no more use
                self._set_region(moved)
                continue
            return conn, response
        raise OSError(f"{self.shown}: the bucket is in region {moved}, not {self.region}")

    def _path(self, key: str) -> str:
        full = f"{self.prefix}/{key}" if self.prefix else key
        return urllib.parse.quote(f"{self.base}/{self.bucket}/{full}", safe="/-_.~")

    def _signed(
        self, method: str, path: str, now: datetime.datetime | None = None
    ) -> dict[str, str]:
        """The headers of an AWS Signature Version 4 request with an empty body, at ``now``."""
        now = now or datetime.datetime.now(datetime.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        headers = {
            "host": self.netloc,
            "x-amz-content-sha256": _EMPTY_SHA256,
            "x-amz-date": stamp,
        }
        if self.credentials.token:
            headers["x-amz-security-token"] = self.credentials.token
        names = sorted(headers)
        canonical = "\n".join(
            [
                method,
                path,
                "",
                "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                ";".join(names),
                _EMPTY_SHA256,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signing = f"AWS4{self.credentials.secret}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.credentials.key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return headers

    def _connection(self, *, fresh: bool = False) -> http.client.HTTPConnection:
        """An idle kept-alive connection, or (none idle, or ``fresh``) a new one."""
        with self._lock:
            if self._idle and not fresh:
                return self._idle.pop()
            self.connections += 1
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=CONNECT_TIMEOUT)
        try:
            conn.connect()
        except BaseException:
            _close(conn)
            raise
        if conn.sock is not None:
            conn.sock.settimeout(READ_TIMEOUT)
        return conn

    def _finish(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        """Hand ``conn`` back for the next request once ``response`` is read to its end (a small
        error document is read here); a response read only in part (an object found damaged, a
        reader that stopped) closes it: bytes left on it would be read as the next answer."""
        if not response.isclosed():
            length = response.getheader("content-length") or ""
            small = length.isascii() and length.isdigit() and int(length) <= 1 << 16
            if response.status == 200 or not small:
                _close(conn)
                return
            try:
                response.read()
            except Exception:
                _close(conn)
                return
        if response.will_close or conn.sock is None:  # the server said it closes this one
            _close(conn)
            return
        with self._lock:
            self._idle.append(conn)

    def _close_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)


def _close(conn: http.client.HTTPConnection | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()


def _length(response: http.client.HTTPResponse) -> int:
    value = response.getheader("content-length")
    # isdigit alone takes '²' (a header is read as Latin-1), which int() refuses
    if value is None or not (value.isascii() and value.isdigit()):
        raise OSError("the S3 server sent no Content-Length")
    return int(value)


def _check(response: http.client.HTTPResponse) -> None:
    if response.status == 200:
        return
    if response.status == 403:
        raise PermissionError(f"access denied (HTTP 403 {response.reason})")
    raise OSError(f"the S3 server answered HTTP {response.status} {response.reason}")
