"""The command lines of ``mlbuild serve`` and ``mlbuild predict``."""

from __future__ import annotations

import argparse
import math

from mlbuild.cli.parser import whole_number


def add_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="BUNDLE|OVERRIDE",
        help="Hydra overrides, or a bundle (a directory or .tar.gz `mlbuild package` wrote) to "
        "serve with no repository",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument(
        "--workers", type=int, default=1, metavar="N", help="server processes (default: 1)"
    )
    p.add_argument(
        "--max-body-size",
        type=_size,
        default=8 * 1024 * 1024,
        metavar="BYTES",
        help="largest request body accepted, e.g. 65536, 512k, 8M (default: 8M)",
    )
    auth = p.add_mutually_exclusive_group()
    auth.add_argument(
        "--token-env",
        metavar="VAR",
        help="require `Authorization: Bearer TOKEN`, TOKEN being this environment variable's value",
    )
    auth.add_argument(
        "--token-file", metavar="FILE", help="require a bearer token, read from this secret file"
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--threads",
        type=whole_number(1, 1024),
        default=1,
        metavar="N",
        help="threads per worker that run predict(); above 1 the model's predict() must be "
        "thread-safe (default: 1)",
    )
    p.add_argument(
        "--queue",
        type=whole_number(0, 100_000),
        default=64,
        metavar="N",
        help="prediction requests that may wait for a thread; more get 503 (default: 64)",
    )
    p.add_argument(
        "--header-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="time a client has to send a request's headers (default: 10)",
    )
    p.add_argument(
        "--body-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="time a client has to send a request's body (default: 30)",
    )


def add_predict(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input", metavar="FILE", help="rows to score (.csv with a header row, or .jsonl)"
    )
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides")
    p.add_argument(
        "-o", "--output", metavar="OUT", help="write the predictions here (default: stdout)"
    )


def _size(text: str) -> int:
    """``65536``, ``512k``, ``8M`` → bytes."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    raw = text.strip().lower().removesuffix("b").removesuffix("i")
    factor = units.get(raw[-1:], 1)
    number = raw[:-1] if raw[-1:] in units else raw
    if not number.isdigit() or int(number) <= 0:
        raise argparse.ArgumentTypeError(f"expected a size such as 65536, 512k or 8M, got {text!r}")
    return int(number) * factor


def _seconds(text: str) -> float:
    """``10``, ``0.5`` → seconds, more than 0 and at most an hour."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds above 0 and at most 3600, got {text!r}"
        )
    return value
