"""mlbuild's own reads of an S3 remote (``mlbuild/cache/remote/s3.py``): signed exactly as
botocore signs, used only where the configuration is one it reproduces, and the reason a restoring
CI job imports neither s3fs nor botocore. The backend contract it shares with the others is in
``test_remote_backends.py``; runs against it (truncated, altered, malformed remote files) in
``test_remote_run.py``.

moto does not check signatures, so the signing is checked against botocore's signer, the
reference, on the same request at the same instant.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mlbuild.cache.remote import s3 as reads
from tests.conftest import Workspace

ENV = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalr/K7MDENG+bPxRfiCY"}


@pytest.mark.parametrize(
    ("endpoint", "prefix", "token", "region"),
    [
        ("http://127.0.0.1:9000", "cache", None, "us-east-1"),
        ("https://rgw.example.com", "team cache/ü+x", "FQoGZXIvYXdzE//token=", "eu-west-3"),
        ("", "", None, "ap-southeast-2"),  # AWS's regional endpoint
    ],
)
def test_requests_are_signed_as_botocore_signs_them(
    endpoint: str, prefix: str, token: str | None, region: str
) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = reads.Credentials(ENV["AWS_ACCESS_KEY_ID"], ENV["AWS_SECRET_ACCESS_KEY"], token)
    reader = reads.S3Reader(endpoint, "my-bucket", prefix, creds, region, "shown", _no_writes)
    for method in ("GET", "HEAD"):
        path = reader._path("actions/ab/" + "c" * 64 + ".json")
        request = AWSRequest(method=method, url=f"{reader.scheme}://{reader.netloc}{path}")
        request.headers["x-amz-content-sha256"] = reads._EMPTY_SHA256
        S3SigV4Auth(Credentials(creds.key, creds.secret, token), "s3", region).add_auth(request)
        stamp = request.headers["X-Amz-Date"]
        at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        ours = reader._signed(method, path, at)
        assert ours["authorization"] == request.headers["Authorization"]
        assert ours["x-amz-date"] == stamp


def _no_writes() -> Any:
    raise AssertionError("nothing is written here")


@pytest.mark.parametrize(
    ("url", "options", "env", "readable"),
    [
        ("s3://b/p", {}, ENV, True),
        ("s3://b/p", {"endpoint_url": "http://127.0.0.1:9000"}, ENV, True),
        ("s3://b", {}, {**ENV, "AWS_ENDPOINT_URL": "https://minio.local"}, True),
        ("s3://b/p", {}, {}, False),  # a profile, an instance role: botocore's chain
        ("s3://b/p", {}, {"AWS_ACCESS_KEY_ID": "AKID"}, False),  # half a key
        ("s3://b/p", {"profile": "ci"}, ENV, False),
        ("s3://b/p", {"anon": True}, ENV, False),
        ("s3://b/p", {"client_kwargs": {"region_name": "x"}}, ENV, False),
        ("s3://b/p", {"endpoint_url": "ftp://host"}, ENV, False),
        ("s3://b/p", {"endpoint_url": "http://host/?x=1"}, ENV, False),
        ("s3:///p", {}, ENV, False),
    ],
)
def test_only_configurations_it_reproduces_are_read_without_s3fs(
    url: str, options: dict[str, Any], env: dict[str, str], readable: bool
) -> None:
    assert (reads.reader_for(url, options, env) is not None) is readable


RESTORE = """
import json, sys
from mlbuild.cache.remote import s3 as reads
backend = reads.connect({url!r}, {{}}, {url!r}, "s3fs")
found = backend.size("objects/aa/there")
with backend.opened("objects/aa/there") as opened:
    data = opened.read(opened.size + 1)
missing = backend.size("objects/aa/none")
heavy = ("s3fs", "botocore", "aiobotocore", "aiohttp", "fsspec")
heavy = sorted(m for m in heavy if m in sys.modules)
print(json.dumps([type(backend).__name__, found, data.decode(), missing, heavy]))
"""


def test_reading_imports_no_cloud_library(
    ws: Workspace, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    bucket = s3.bucket()
    s3.client().put_object(Bucket=bucket, Key="cache/objects/aa/there", Body=b"hello")
    done = ws.cli_python(RESTORE.format(url=f"s3://{bucket}/cache"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '["S3Reader", 5, "hello", null, []]'


def test_reads_through_s3fs_on_request(
    ws: Workspace, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {**s3.env, "MLBUILD_S3_READS": "s3fs"}.items():
        monkeypatch.setenv(key, value)
    bucket = s3.bucket()
    s3.client().put_object(Bucket=bucket, Key="cache/objects/aa/there", Body=b"hello")
    done = ws.cli_python(RESTORE.format(url=f"s3://{bucket}/cache"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('["FsspecBackend", 5, "hello", null, ["aiobotocore"')


def test_a_bucket_that_does_not_exist_reads_as_empty_as_through_s3fs(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    backend = reads.connect("s3://no-such-bucket-here/cache", {}, "shown", "s3fs")
    # S3 answers NoSuchBucket with 404: a miss (s3fs's FileNotFoundError); the first upload
    # then fails, and says so
    assert backend.size("objects/aa/x") is None
    with pytest.raises(FileNotFoundError), backend.opened("objects/aa/x"):
        pass


def test_a_remote_that_does_not_answer_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    backend = reads.connect(
        "s3://b/cache", {"endpoint_url": f"http://127.0.0.1:{port}"}, "x", "s3fs"
    )
    with pytest.raises(ConnectionError) as refused:
        backend.size("objects/aa/x")
    url = f"http://127.0.0.1:{port}/b/cache/objects/aa/x"
    assert str(refused.value) == f'Could not connect to the endpoint URL: "{url}"'
    # the run's warning and its masking are pinned in test_remote_faults.py


@pytest.mark.parametrize(
    ("region", "valid"),
    [
        ("eu-west-3", True),
        ("us-gov-west-1", True),
        ("ap-southeast-2", True),
        ("evil.example.com#", False),
        ("us-east-1.attacker.net", False),
        ("", False),
        ("EU-WEST-3", False),
    ],
)
def test_only_a_region_name_is_followed_into_a_host_name(region: str, valid: bool) -> None:
    # AWS's "the bucket is in region R" answer picks the host of the retry: never another host
    assert bool(reads._REGION.fullmatch(region)) is valid


@pytest.mark.parametrize("length", [b"\xb2", b"-1", b"1e3", b""])
def test_a_content_length_that_is_not_a_number_is_the_servers_error(length: bytes) -> None:
    # a hostile or broken server: '\xb2' is '²' in Latin-1, a digit to str.isdigit
    import socket
    import threading

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]

        def answer() -> None:
            for _ in range(2):
                conn, _ = server.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n"
                        b"Connection: close\r\n\r\nab"
                    )

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        creds = reads.Credentials("AKIDEXAMPLE", "secret", None)
        reader = reads.S3Reader(
            f"http://127.0.0.1:{port}", "b", "p", creds, "us-east-1", "shown", _no_writes
        )
        with pytest.raises(OSError) as sized:
            reader.size("objects/aa/x")
        with pytest.raises(OSError) as opened, reader.opened("objects/aa/x"):
            pass
        for caught in (sized, opened):
            assert str(caught.value) == "the S3 server sent no Content-Length"
        thread.join(timeout=10)


class KeptAlive:
    """A keep-alive HTTP/1.1 server answering S3's GET and HEAD from ``objects`` (path-style
    keys under bucket ``b``, prefix ``p``), counting the connections it accepts. moto's server
    (werkzeug) closes every connection, so connection reuse is checked here; like moto, it does
    not check signatures (the signing is checked against botocore above)."""

    def __init__(self, objects: dict[str, bytes], idle_timeout: float | None = None) -> None:
        import http.server
        import threading

        self.accepted = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = idle_timeout  # a connection idle this long is closed by the server

            def setup(self) -> None:
                outer.accepted += 1
                super().setup()

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, *, body: bool) -> None:
                data = objects.get(self.path.removeprefix("/b/p/"))
                self.send_response(404 if data is None else 200)
                data = b"<Error><Code>NoSuchKey</Code></Error>" if data is None else data
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        creds = reads.Credentials("AKIDEXAMPLE", "secret", None)
        endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.reader = reads.S3Reader(endpoint, "b", "p", creds, "us-east-1", "shown", _no_writes)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def kept_alive() -> Iterator[Callable[..., KeptAlive]]:
    servers: list[KeptAlive] = []

    def start(objects: dict[str, bytes], idle_timeout: float | None = None) -> KeptAlive:
        servers.append(KeptAlive(objects, idle_timeout))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_one_connection_serves_a_whole_restore_in_turn(
    kept_alive: Callable[..., KeptAlive],
) -> None:
    # a handshake per request (TCP and TLS with a real store) would cost more than the reads
    server = kept_alive({f"objects/aa/{i}": b"x" * i for i in range(1, 6)})
    backend = server.reader
    for i in range(1, 6):
        assert backend.size(f"objects/aa/{i}") == i
        with backend.opened(f"objects/aa/{i}") as opened:
            assert opened.read(opened.size + 1) == b"x" * i
        assert backend.size(f"objects/bb/{i}") is None
        with pytest.raises(FileNotFoundError), backend.opened(f"objects/bb/{i}"):
            pass
    assert (backend.connections, server.accepted) == (1, 1)


def test_a_response_read_in_part_never_answers_the_next_request(
    kept_alive: Callable[..., KeptAlive],
) -> None:
    # an object found damaged stops being read mid-way: the rest of its bytes are still on the
    # connection, and must not be taken for the next answer
    big, small = b"A" * 300_000, b"the next object"
    server = kept_alive({"objects/aa/big": big, "objects/aa/small": small})
    backend = server.reader
    with backend.opened("objects/aa/big") as opened:
        assert opened.read(10) == b"A" * 10
    with backend.opened("objects/aa/small") as opened:
        assert opened.read(opened.size + 1) == small
    assert backend.size("objects/aa/big") == len(big)
    assert (backend.connections, server.accepted) == (2, 2)


def test_threads_reading_at_once_each_get_their_own_object(
    kept_alive: Callable[..., KeptAlive],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bodies = {f"objects/aa/{i}": str(i).encode() * (1000 + i) for i in range(40)}
    server = kept_alive(bodies)

    def read(key: str) -> bytes:
        with server.reader.opened(key) as opened:
            data: bytes = opened.read(opened.size + 1)
            return data

    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            assert list(pool.map(read, bodies)) == list(bodies.values())
    assert 1 <= server.reader.connections <= 8


def test_connections_the_server_closed_while_idle_are_not_a_failure(
    kept_alive: Callable[..., KeptAlive],
) -> None:
    # a store closes a kept-alive connection left idle (while the next step runs): every idle
    # one may be dead by then, so the retry is on a new connection, not the next idle one
    import threading
    import time

    bodies = {f"objects/aa/{i}": str(i).encode() * 100 for i in range(4)}
    server = kept_alive(bodies, idle_timeout=0.3)
    barrier = threading.Barrier(4)

    def read(key: str) -> bytes:
        with server.reader.opened(key) as opened:
            barrier.wait(timeout=10)  # four requests at once: four connections left idle
            data: bytes = opened.read(opened.size + 1)
            return data

    threads = [threading.Thread(target=read, args=(key,)) for key in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(server.reader._idle) == 4
    time.sleep(1.0)  # the server closes all four
    for key, body in bodies.items():
        with server.reader.opened(key) as opened:
            assert opened.read(opened.size + 1) == body
        assert server.reader.size(key) == len(body)


def test_a_restore_over_moto_reads_right_when_every_connection_is_closed(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto answers 'Connection: close': a connection the server closes is not handed out again
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    bucket = s3.bucket()
    for i in range(1, 4):
        s3.client().put_object(Bucket=bucket, Key=f"cache/objects/aa/{i}", Body=b"y" * i)
    backend = reads.connect(f"s3://{bucket}/cache", {}, "shown", "s3fs")
    assert isinstance(backend, reads.S3Reader)
    for i in range(1, 4):
        with backend.opened(f"objects/aa/{i}") as opened:
            assert opened.read(opened.size + 1) == b"y" * i
        assert backend.size(f"objects/bb/{i}") is None
