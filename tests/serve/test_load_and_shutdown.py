"""The server under slow models, slow clients and shutdown, as real processes on loopback:
predictions run off the event loop (probes answer during a slow predict), overload is refused
with a 503, slow or oversized request heads and slow bodies are cut off, a compressed bomb is not
inflated, and SIGTERM drains every request in flight."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import Workspace
from tests.serve.conftest import TYPES, VALID, Server

pytestmark = pytest.mark.slow

INFER = "/v2/models/echo/infer"


def request(rows: int = 1) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": t, "datatype": t, "shape": [rows], "data": [VALID[t]] * rows} for t in TYPES
        ]
    }


def in_flight(server: Server) -> int:
    text = server.request("GET", "/metrics")[2].decode()
    found = re.search(r"^mlbuild_requests_in_flight (\d+)$", text, re.MULTILINE)
    assert found, text
    return int(found.group(1))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def in_background(server: Server, count: int, rows: int = 1) -> tuple[list[int], list[Any]]:
    """Send ``count`` predictions at once from threads; their statuses land in the list."""
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: statuses.append(server.json("POST", INFER, request(rows))[0])
        )
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    return statuses, threads


def test_probes_and_metrics_answer_while_a_prediction_is_slow(
    built_echo: Path, serving: list[Server]
) -> None:
    server = Server(Workspace(built_echo), env={"ECHO_DELAY": "3"})
    serving.append(server)
    statuses, (thread,) = in_background(server, 1)
    wait_for(lambda: in_flight(server) == 1, "the prediction to start")
    for path in ("/v2/health/live", "/v2/health/ready", "/metrics", "/v2/models/echo"):
        assert server.request("GET", path)[0] == 200, path
    assert thread.is_alive()  # every probe was answered while predict() still slept
    thread.join()
    assert statuses == [200]
    assert server.stop()[0] == 0


def test_overload_is_refused_with_a_503_and_retry_after(
    built_echo: Path, serving: list[Server]
) -> None:
    server = Server(
        Workspace(built_echo), "--threads", "1", "--queue", "1", env={"ECHO_DELAY": "2"}
    )
    serving.append(server)
    statuses, threads = in_background(server, 2)
    wait_for(lambda: in_flight(server) == 2, "two predictions admitted")
    status, headers, answer = server.request(
        "POST", INFER, json.dumps(request()), {"Content-Type": "application/json"}
    )
    assert (status, json.loads(answer)) == (
        503,
        {
            "error": "the server is busy: 2 requests are already running or waiting "
            "(--threads 1, --queue 1); retry in a moment"
        },
    )
    assert headers["retry-after"] == "1"
    status, _, answer = server.request(
        "POST",
        "/invocations",
        json.dumps({"instances": [VALID]}),
        {"Content-Type": "application/json"},
    )
    assert status == 503
    assert json.loads(answer)["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert server.request("GET", "/v2/health/ready")[0] == 200  # probes are never refused
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    metrics = server.request("GET", "/metrics")[2].decode()
    assert 'mlbuild_errors_total{route="/v2/models/{name}/infer",kind="overloaded"} 1' in metrics
    assert "mlbuild_requests_in_flight 0" in metrics
    assert server.stop()[0] == 0


def test_sigterm_drains_every_request_in_flight_with_one_worker(
    built_echo: Path, serving: list[Server]
) -> None:
    server = Server(Workspace(built_echo), "--workers", "1", env={"ECHO_DELAY": "0.5"})
    serving.append(server)
    statuses, threads = in_background(server, 6)
    wait_for(lambda: in_flight(server) == 6, "six predictions admitted")
    server.proc.send_signal(signal.SIGTERM)
    # it stops accepting connections at once, while the six (3 s of predictions) still run
    answered_when_closed = None
    deadline = time.monotonic() + 30
    while answered_when_closed is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
            time.sleep(0.02)
        except ConnectionRefusedError:
            answered_when_closed = len(statuses)
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    assert answered_when_closed is not None and answered_when_closed < 6
    # the one SIGTERM above stops it: a second one, sent while the interpreter finalizes (its
    # handlers back to the default), would kill it with -15
    _, err = server.proc.communicate(timeout=60)
    assert server.proc.returncode == 0
    assert err.endswith("mlbuild: server stopped\n")


def test_predictions_run_on_several_threads_and_every_one_is_counted(
    built_echo: Path, serving: list[Server]
) -> None:
    server = Server(Workspace(built_echo), "--threads", "4", env={"ECHO_DELAY": "0.2"})
    serving.append(server)
    statuses, threads = in_background(server, 16, rows=2)
    for thread in threads:
        thread.join()
    assert statuses == [200] * 16
    metrics = server.request("GET", "/metrics")[2].decode()
    assert 'mlbuild_requests_total{route="/v2/models/{name}/infer",status="200"} 16' in metrics
    assert 'mlbuild_input_rows_total{input="UINT8"} 32' in metrics
    assert 'mlbuild_input_feature_sum{input="INT64",feature="INT64"} -32.0' in metrics
    assert server.stop()[0] == 0


def test_a_slowloris_client_is_dropped_while_others_are_served(
    built_echo: Path, serving: list[Server]
) -> None:
    server = Server(Workspace(built_echo), "--header-timeout", "1")
    serving.append(server)
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    slow.sendall(b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    slow.setblocking(False)
    answer = b""
    served = 0
    for _ in range(300):  # a header byte every 0.1 s, and a normal request in between
        try:
            slow.sendall(b"a")
            answer = slow.recv(4096)
        except BlockingIOError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            break
        if answer:
            break
        assert server.json("POST", INFER, request())[0] == 200
        served += 1
        time.sleep(0.1)
    slow.close()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b'{"error":"the request headers did not arrive within 1 s"}')
    assert served >= 1
    assert server.stop()[0] == 0


def test_idle_connections_huge_heads_and_slow_bodies_are_cut_off(
    built_echo: Path, serving: list[Server]
) -> None:
    server = Server(Workspace(built_echo), "--header-timeout", "1", "--body-timeout", "1")
    serving.append(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as idle:
        assert idle.recv(4096) == b""  # closed, nothing to answer: no request began

    # on a kept-alive connection the time counts from the next request's first byte
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/v2/health/live")
    assert conn.getresponse().read() == b""
    assert conn.sock is not None
    conn.sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost")
    assert conn.sock.recv(4096).startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    conn.close()

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as huge:
        huge.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000)
        assert huge.recv(4096) == (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: 68\r\nconnection: close\r\n\r\n"
            b'{"error":"the request line and headers are larger than 65536 bytes"}'
        )

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as slow:
        slow.sendall(
            b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            b'Content-Type: application/json\r\n\r\n{"inputs": '
        )
        response = b""
        while chunk := slow.recv(4096):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nconnection: close" in head
    assert json.loads(body) == {
        "error": "the request body did not arrive within 1 s (--body-timeout)"
    }
    assert server.json("POST", INFER, request())[0] == 200
    metrics = server.request("GET", "/metrics")[2].decode()
    assert 'mlbuild_errors_total{route="/v2/models/{name}/infer",kind="timeout"} 1' in metrics
    assert server.stop()[0] == 0


def test_a_client_that_leaves_mid_body_is_counted_and_forgotten(
    built_echo: Path, serving: list[Server]
) -> None:
    server = Server(Workspace(built_echo))
    serving.append(server)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as leaving:
            leaving.sendall(
                b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
                b'Content-Type: application/json\r\n\r\n{"inputs": ['
            )
    wait_for(
        lambda: 'kind="disconnected"} 3' in server.request("GET", "/metrics")[2].decode(),
        "three disconnections counted",
    )
    assert server.json("POST", INFER, request())[0] == 200
    assert in_flight(server) == 0
    assert server.stop()[0] == 0


def peak_memory(pid: int) -> int:
    """The process's peak resident set size in bytes (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    assert found, status
    return int(found.group(1)) * 1024


def test_a_gzip_bomb_is_refused_without_being_inflated(
    built_echo: Path, serving: list[Server]
) -> None:
    server = Server(Workspace(built_echo))  # the default limit: 8 MiB
    serving.append(server)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"0" * (16 * 1024 * 1024)
    bomb = b"".join(compressor.compress(zeros) for _ in range(8)) + compressor.flush()
    assert len(bomb) < 1024 * 1024  # 128 MiB inflated
    before = peak_memory(server.proc.pid)
    status, _, answer = server.request(
        "POST", INFER, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert (status, json.loads(answer)) == (
        413,
        {
            "error": "the request body inflates to more than the limit of 8388608 bytes "
            "(--max-body-size)"
        },
    )
    assert peak_memory(server.proc.pid) - before < 64 * 1024 * 1024
    assert server.stop()[0] == 0


def test_tritonclient_sends_compressed_binary_requests(
    built_echo: Path, serving: list[Server]
) -> None:
    server = Server(Workspace(built_echo))
    serving.append(server)
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        inputs = []
        for t in TYPES:
            dtype = {"BYTES": np.object_, "BOOL": np.bool_}.get(t, t.lower().replace("fp", "float"))
            tensor = triton.InferInput(t, [3], t)
            tensor.set_data_from_numpy(np.array([VALID[t]] * 3, dtype=dtype), binary_data=True)
            inputs.append(tensor)
        for algorithm in ("gzip", "deflate"):
            result = client.infer("echo", inputs, request_compression_algorithm=algorithm)
            assert result.as_numpy("int16").tolist() == [-1, -1, -1], algorithm
            assert result.as_numpy("fp16").tolist() == [0.5, 0.5, 0.5], algorithm
    finally:
        client.close()
    assert server.stop()[0] == 0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--threads", "0"], "argument --threads: expected a whole number from 1 to 1024, got '0'"),
        (["--queue", "-1"], "argument --queue: expected a whole number from 0 to 100000, got '-1'"),
        (
            ["--header-timeout", "nan"],
            "argument --header-timeout: expected a number of seconds above 0 and at most 3600, "
            "got 'nan'",
        ),
        (
            ["--body-timeout", "0"],
            "argument --body-timeout: expected a number of seconds above 0 and at most 3600, "
            "got '0'",
        ),
    ],
)
def test_serve_refuses_bad_limits(built_echo: Path, option: list[str], message: str) -> None:
    done = Workspace(built_echo).cli("serve", *option)
    assert done.returncode == 2
    assert done.stderr == f"mlbuild: {message}\nrun `mlbuild serve --help` for usage\n"
