"""The generated ``.gitlab-ci.yml`` executed for real by gitlab-ci-local (shell executor).

A copy of ``examples/iris`` becomes a git repository with the pipeline ``mlbuild ci gitlab``
writes; each pipeline runs in a fresh clone, as a runner would check it out. A branch pipeline
trains the model; a second one in another clone restores every step from the shared
``MLBUILD_CACHE_DIR``; a merge-request pipeline writes the ``mlbuild diff`` report and posts it
as a note to a GitLab API stand-in on 127.0.0.1, with the token only in the request's header.

gitlab-ci-local 4.70.1 (the last release for Node 20) is installed with npm into
``.cache/npm`` when missing (``scripts/test`` does so too).
"""

from __future__ import annotations

import fcntl
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Workspace
from tests.review.history import git

pytestmark = pytest.mark.slow

VERSION = "4.70.1"
NPM_PREFIX = REPO / ".cache" / "npm"
EXAMPLE = REPO / "examples" / "iris"
TOKEN = "glpat-s3cr3t-t0ken-value"


def gitlab_ci_local() -> Path:
    """The gitlab-ci-local binary, installed into .cache/npm on first use."""
    binary = NPM_PREFIX / "node_modules" / ".bin" / "gitlab-ci-local"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    assert npm is not None, "npm is missing: install Node 20 (Debian: apt-get install nodejs npm)"
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    with (NPM_PREFIX / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install, whichever test worker comes first
        if not binary.exists():
            _install(npm)
    return binary


def _install(npm: str) -> None:
    done = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(NPM_PREFIX),
            "--no-audit",
            "--no-fund",
            f"gitlab-ci-local@{VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr


class NotesApi(http.server.BaseHTTPRequestHandler):
    """GitLab's ``POST /projects/:id/merge_requests/:iid/notes``, recording each request."""

    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append(
            {
                "path": self.path,
                "token": self.headers.get("PRIVATE-TOKEN"),
                "body": self.rfile.read(length).decode(),
                "type": self.headers.get("Content-Type"),
            }
        )
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": 1}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def notes_api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (NotesApi,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v4", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """examples/iris as a repository of its own, with the pipeline mlbuild writes for it."""

    def generated(folder: str, names: list[str]) -> set[str]:
        at_top = Path(folder) == EXAMPLE
        outputs = {"data", "model", "metrics.json", ".mlbuild"}
        return {n for n in names if n == "__pycache__" or (at_top and n in outputs)}

    root = Path(shutil.copytree(EXAMPLE, tmp_path / "origin", ignore=generated))
    git(root, "init", "-q", "-b", "main")
    made = Workspace(root).cli("ci", "gitlab")
    assert made.returncode == 0, made.stderr
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "iris with its pipeline")
    return root


def clone(origin: Path, where: Path, branch: str = "main") -> Path:
    git(where.parent, "clone", "-q", "--branch", branch, str(origin), where.name)
    return where


def pipeline(
    checkout: Path, tmp_path: Path, variables: dict[str, str], name: str
) -> subprocess.CompletedProcess[str]:
    """gitlab-ci-local in ``checkout``: every job on the shell executor, mlbuild from this
    repository on PATH, the environment already installed (``MLBUILD_ENV_INSTALL=false``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "mlbuild"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mlbuild.cli.main "$@"\n')
    wrapper.chmod(0o755)
    shared = {
        "MLBUILD_ENV_INSTALL": "false",
        "MLBUILD_CACHE_DIR": str(tmp_path / "shared-cache"),
        "CI_PROJECT_DIR": str(checkout),
        "GITLAB_CI": "true",
    }
    args = [str(gitlab_ci_local()), "--force-shell-executor", "--no-color"]
    for key, value in {**shared, **variables}.items():
        args += ["--variable", f"{key}={value}"]
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
    done = subprocess.run(
        args,
        cwd=checkout,
        env={**os.environ, "PATH": path, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    (tmp_path / f"{name}.log").write_text(done.stdout + done.stderr)
    return done


def job_log(checkout: Path, job: str) -> str:
    # gitlab-ci-local writes the ':' of a job's name as 'Og' in its log's file name
    return (checkout / ".gitlab-ci-local" / "output" / f"{job.replace(':', 'Og')}.log").read_text()


def test_branch_pipelines_train_then_restore_everything_from_the_cache(
    origin: Path, tmp_path: Path
) -> None:
    first = clone(origin, tmp_path / "first")
    done = pipeline(first, tmp_path, {}, "first")
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"PASS\s+mlbuild:validate", done.stdout)
    assert re.search(r"PASS\s+mlbuild:run", done.stdout)
    assert "mlbuild:diff" not in done.stdout  # merge requests only
    run_log = job_log(first, "mlbuild:run")
    assert "4 steps: 4 ran in" in run_log
    # one collapsible section per step: gitlab-ci-local reads GitLab's markers as GitLab does
    # and shows each section's start and duration
    for step in ("prepare", "featurize", "train", "evaluate"):
        assert re.search(rf"^mlbuild_\d+_{step}_started$", run_log, re.MULTILINE), run_log
        assert re.search(rf"^mlbuild_\d+_{step} took \d+ms$", run_log, re.MULTILINE), run_log
    metrics = (first / "mlbuild-metrics.txt").read_text().splitlines()
    assert [line.split("{")[0] for line in metrics] == ["accuracy", "f1_macro", "n_test", "# EOF"]

    # a fresh checkout with the same cache: nothing runs, every step is restored
    second = clone(origin, tmp_path / "second")
    again = pipeline(second, tmp_path, {}, "second")
    assert again.returncode == 0, again.stdout[-3000:]
    log = job_log(second, "mlbuild:run")
    assert "4 steps: 4 restored in" in log, log
    for step in ("prepare", "featurize", "train", "evaluate"):  # a section each, as before
        assert re.search(rf"^mlbuild_\d+_{step} took \d+ms$", log, re.MULTILINE), log


def test_a_merge_request_pipeline_posts_the_diff_as_a_note(
    origin: Path, tmp_path: Path, notes_api: tuple[str, list[dict[str, Any]]]
) -> None:
    api, received = notes_api
    base = git(origin, "rev-parse", "HEAD")
    git(origin, "checkout", "-q", "-b", "feature")
    logreg = origin / "conf" / "model" / "logreg.yaml"
    logreg.write_text(logreg.read_text().replace("C: 1.0", "C: 0.5"))
    git(origin, "commit", "-q", "-am", "a stronger regularisation")
    checkout = clone(origin, tmp_path / "mr", branch="feature")
    variables = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
        "CI_MERGE_REQUEST_IID": "7",
        "CI_PROJECT_ID": "42",
        "CI_API_V4_URL": api,
        "MLBUILD_GITLAB_TOKEN": TOKEN,
    }
    done = pipeline(checkout, tmp_path, variables, "mr")
    assert done.returncode == 0, done.stdout[-3000:]
    for job in ("mlbuild:validate", "mlbuild:diff", "mlbuild:run"):
        assert re.search(rf"PASS\s+{job}", done.stdout), job
    report = (checkout / "mlbuild-diff.md").read_text()
    assert report.startswith(f"#### mlbuild diff `{base[:12]}` → `HEAD` (")
    assert "| `model.C` | `1.0` | `0.5` |" in report
    assert (
        "| `train` | changed | `after featurize, prepare` | `param model.C changed: 1.0 → 0.5` |"
    ) in report

    assert len(received) == 1
    note = received[0]
    assert note["path"] == "/api/v4/projects/42/merge_requests/7/notes"
    assert note["token"] == TOKEN
    assert note["type"] == "application/x-www-form-urlencoded"
    from urllib.parse import parse_qs

    assert parse_qs(note["body"])["body"] == [report]
    assert "mlbuild: posted the report on merge request !7" in job_log(checkout, "mlbuild:diff")
    # the token is in no log: gitlab-ci-local's, nor any job's
    assert TOKEN not in done.stdout + done.stderr
    for log in (checkout / ".gitlab-ci-local" / "output").iterdir():
        assert TOKEN not in log.read_text(), log.name


def test_without_a_token_the_report_is_an_artifact_only(
    origin: Path, tmp_path: Path, notes_api: tuple[str, list[dict[str, Any]]]
) -> None:
    api, received = notes_api
    base = git(origin, "rev-parse", "HEAD")
    checkout = clone(origin, tmp_path / "mr")
    variables = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
        "CI_MERGE_REQUEST_IID": "8",
        "CI_API_V4_URL": api,
    }
    done = pipeline(checkout, tmp_path, variables, "mr-no-token")
    assert done.returncode == 0, done.stdout[-3000:]
    assert received == []
    assert "MLBUILD_GITLAB_TOKEN is not set; the report is an artifact only" in job_log(
        checkout, "mlbuild:diff"
    )
    assert "nothing that affects the pipeline changed" in (checkout / "mlbuild-diff.md").read_text()


def test_a_fresh_runner_restores_every_step_from_the_remote_cache(
    origin: Path, tmp_path: Path, s3: Any
) -> None:
    """Two branch pipelines with caches of their own, sharing only the remote cache (a real S3
    API, moto) named by the CI/CD variable MLBUILD_REMOTE_CACHE; then a merge request's pipeline,
    read-only by MLBUILD_REMOTE_CACHE_PUSH: "false".

    The generated workflow:rules set that variable on merge requests (tests/ci/test_gitlab.py
    pins the rule), but gitlab-ci-local 4.70.1 does not apply workflow:rules variables, so here
    it is passed as GitLab would set it."""
    bucket = s3.bucket()
    remote = f"s3://{bucket}/mlbuild"
    variables = {**s3.env, "MLBUILD_REMOTE_CACHE": remote}

    def keys() -> list[str]:
        listing = s3.client().list_objects_v2(Bucket=bucket, Prefix="mlbuild/")
        return sorted(o["Key"] for o in listing.get("Contents", []))

    first = clone(origin, tmp_path / "first")
    done = pipeline(first, tmp_path, {**variables, "MLBUILD_CACHE_DIR": str(tmp_path / "c1")}, "1")
    assert done.returncode == 0, done.stdout[-3000:]
    log = job_log(first, "mlbuild:run")
    assert "4 steps: 4 ran in" in log, log
    assert f"remote cache {remote}: fetched 0 results (0 B), uploaded 4 (" in log, log
    uploaded = keys()
    assert len([k for k in uploaded if k.startswith("mlbuild/actions/")]) == 4

    second = clone(origin, tmp_path / "second")
    again = pipeline(
        second, tmp_path, {**variables, "MLBUILD_CACHE_DIR": str(tmp_path / "c2")}, "2"
    )
    assert again.returncode == 0, again.stdout[-3000:]
    log = job_log(second, "mlbuild:run")
    assert "4 steps: 4 restored in" in log, log
    assert f"remote cache {remote}: fetched 4 results (" in log, log
    assert (second / "model").exists()

    # a merge request that changes the model: train and evaluate run, nothing is uploaded
    base = git(origin, "rev-parse", "HEAD")
    git(origin, "checkout", "-q", "-b", "feature")
    logreg = origin / "conf" / "model" / "logreg.yaml"
    logreg.write_text(logreg.read_text().replace("C: 1.0", "C: 0.5"))
    git(origin, "commit", "-q", "-am", "a stronger regularisation")
    mr = clone(origin, tmp_path / "mr", branch="feature")
    mr_variables = {
        **variables,
        "MLBUILD_CACHE_DIR": str(tmp_path / "c3"),
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
        "CI_MERGE_REQUEST_IID": "9",
        "MLBUILD_REMOTE_CACHE_PUSH": "false",
    }
    done = pipeline(mr, tmp_path, mr_variables, "mr")
    assert done.returncode == 0, done.stdout[-3000:]
    log = job_log(mr, "mlbuild:run")
    assert "2 restored" in log and "2 ran" in log, log
    assert f"remote cache {remote}: fetched 2 results (" in log and "uploaded 0 (0 B)" in log, log
    assert keys() == uploaded
    assert s3.env["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr
