"""``kind: pytest``: the team's own pytest folder, run by pytest in a child process with mlbuild's
fixtures (``model``, ``predict``, ``server_url``, ``params``, ``metrics``) on the model under test.

The child gets the context as a JSON file (``MLBUILD_TEST_CONTEXT``), writes no bytecode and no
``.pytest_cache`` into the workspace (the folder's content is part of the test's fingerprint),
and reports through its own JUnit XML, whose cases become this test's cases. pytest's exit code
decides: 0 passed, 1 tests failed and 5 no tests collected are verdicts (cached like any); an
interrupted, crashed or timed-out pytest is an error, which is not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from mlbuild.errors import MlbuildError
from mlbuild.recipe.fields import parse_duration
from mlbuild.testing.context import CONTEXT_ENV, context_of, write_context
from mlbuild.testing.server import child_env
from mlbuild.testing.session import Session
from mlbuild.testing.spec import CompiledTest
from mlbuild.testing.verdict import CASE_STATUSES, CaseResult, Measured, Verdict, capped

PLUGIN = "mlbuild.testing.plugin"
_VERDICTS = {0, 1, 5}  # pytest: all passed, some failed, none collected


def run(test: CompiledTest, session: Session) -> Verdict:
    config = test.config
    log = session.ws.meta / "logs" / f"test-{test.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlbuild-pytest-") as scratch:
        context = Path(scratch) / "context.json"
        junit = Path(scratch) / "junit.xml"
        write_context(context_of(session), context)
        argv = [sys.executable, "-m", "pytest", config["path"], f"--junitxml={junit}"]
        argv += ["-p", "no:cacheprovider", "-q", *plugin_args(), *config.get("args", [])]
        env = child_env({CONTEXT_ENV: str(context), "PYTHONDONTWRITEBYTECODE": "1"})
        timeout = parse_duration(config["timeout"]) if config.get("timeout") else None
        code = _run(argv, session.root, env, log, timeout)
        tail = _tail(log)
        if code not in _VERDICTS:
            raise MlbuildError(
                f"pytest {_exit_words(code)} in {config['path']}; its output is in {log}:\n{tail}"
            )
        cases = read_junit(junit) if junit.exists() else []
    tally = {s: sum(1 for c in cases if c.status == s) for s in CASE_STATUSES}
    # recorded on the run as tests.NAME.cases_passed …: tests.NAME.passed is the verdict
    counts: Measured = {f"cases_{s}": n for s, n in tally.items()}
    if code == 5:
        return Verdict(
            False, f"pytest collected no tests in {config['path']}", [tail], counts, cases
        )
    bad = [c for c in cases if c.status in ("failed", "error")]
    summary = ", ".join(f"{n} {s}" for s, n in tally.items() if n) or "no tests ran"
    if code == 0 and not bad:
        return Verdict(True, f"pytest: {summary}", [], counts, cases)
    details = [f"{c.classname}::{c.name}: {c.message}" for c in bad] or [tail]
    return Verdict(False, f"pytest: {summary}", capped(details), counts, cases)


def plugin_args() -> list[str]:
    """``-p mlbuild.testing.plugin`` unless the installed distribution's ``pytest11`` entry
    point loads it already (loading it twice is an error in pytest)."""
    if not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        from importlib.metadata import entry_points

        if any(ep.value == PLUGIN for ep in entry_points(group="pytest11")):
            return []
    return ["-p", PLUGIN]


def read_junit(path: Path) -> list[CaseResult]:
    """The cases of pytest's JUnit XML report."""
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - pytest's own report, written just now
    except (ET.ParseError, OSError):
        return []
    cases = []
    for case in root.iter("testcase"):
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                lines = (child.get("message") or child.text or "").strip().splitlines()
                message = lines[0] if lines else ""
                break
        try:
            seconds = float(case.get("time") or 0)
        except ValueError:
            seconds = 0.0
        cases.append(
            CaseResult(case.get("name", ""), case.get("classname", ""), status, message, seconds)
        )
    return cases


def _run(argv: list[str], cwd: Path, env: dict[str, str], log: Path, timeout: float | None) -> int:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its servers and workers are stopped with it
        )
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            return _TIMED_OUT
        finally:
            if proc.poll() is None:  # Ctrl-C, or an error here
                _stop(proc)


_TIMED_OUT = -1000


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _exit_words(code: int) -> str:
    if code == _TIMED_OUT:
        return "timed out"
    if code < 0:
        return f"was killed by signal {-code}"
    meaning = {2: "was interrupted", 3: "hit an internal error", 4: "was given bad arguments"}
    return f"{meaning.get(code, 'failed')} (exit code {code})"


def _tail(log: Path, lines: int = 30) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
