"""Serving loads only the bytes the step produced: a pickle swapped into the cache or into
``.mlbuild/serving/`` is detected and never unpickled.

The swapped pickle's ``__reduce__`` writes a marker file when it is loaded; every test asserts
the marker does not exist.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.cache.damage import cache_root, entry_of, object_path, quarantined
from tests.conftest import Workspace
from tests.serve.conftest import Server, free_port
from tests.test_example_iris import STEP_ENV

RECIPE = """\
schema_version: 1
name: lr
steps:
  train:
    cmd: python train.py
    deps: [train.py]
    outs: [model.joblib]
model:
  artifacts: {model: model.joblib}
  flavor: sklearn
  signature:
    inputs: [{name: input-0, datatype: FP64, shape: [-1, 2]}]
    outputs: [{name: label, datatype: INT64, shape: [-1]}]
"""
TRAIN = """\
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
x = np.array([[0.0, 0.0], [0.1, 0.2], [1.0, 1.0], [0.9, 1.1]])
joblib.dump(LogisticRegression().fit(x, np.array([0, 0, 1, 1])), "model.joblib")
"""
ROWS = "[0.05, 0.1]\n[1.0, 0.95]\n"
PREDICTIONS = '{"label":0}\n{"label":1}\n'


class _Payload:
    """Unpickling this runs code: it writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('loaded')",))


def evil_pickle(marker: Path, size: int) -> bytes:
    """A pickle that runs code, padded to ``size`` bytes so only its hash can give it away."""
    data = pickle.dumps(_Payload(marker))
    assert len(data) <= size
    return data + b"\0" * (size - len(data))


@pytest.fixture
def model(ws: Workspace, tmp_path: Path) -> Workspace:
    ws.recipe(RECIPE).gen({"train.py": TRAIN, "rows.jsonl": ROWS})
    done = ws.cli("run", "-q", env=STEP_ENV)
    assert done.returncode == 0, done.stderr
    return ws


def swap(path: Path, marker: Path) -> None:
    data = evil_pickle(marker, path.stat().st_size)
    path.chmod(0o644)
    path.write_bytes(data)


def model_object(ws: Workspace) -> Path:
    _, entry = entry_of(cache_root(ws), "train")
    return object_path(cache_root(ws), entry["outs"]["model.joblib"]["digest"])


def test_the_payload_really_runs_code_when_loaded(tmp_path: Path) -> None:
    """The check the other tests rely on: loading the swapped file would write the marker."""
    import joblib

    marker = tmp_path / "marker"
    (tmp_path / "evil.joblib").write_bytes(evil_pickle(marker, 4096))
    joblib.load(tmp_path / "evil.joblib")
    assert marker.read_text() == "loaded"


def test_a_pickle_swapped_into_the_cache_is_never_loaded(model: Workspace, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    obj = model_object(model)
    digest = obj.parent.name + obj.name
    swap(obj, marker)
    assert not (model.root / ".mlbuild" / "serving").exists()  # nothing copied out yet
    assert "train  cached" in model.cli("plan").stdout  # the workspace copy is intact
    for command in (["predict", "rows.jsonl"], ["serve", "--port", str(free_port())]):
        done = model.cli(*command, timeout=60)
        moved = cache_root(model) / "quarantine" / quarantined(cache_root(model))[0]
        assert (done.returncode, done.stderr) == (
            1,
            f"mlbuild: model artifact model.joblib: the cached copy step 'train' made is "
            f"unusable (cache object {digest} "
            + (
                f"does not match its digest (altered); moved to {moved}"
                if command[0] == "predict"
                else "is missing"
            )
            + "); serving takes only the bytes the step produced, so make them again with "
            "`mlbuild run --force train`\n",
        )
        assert not marker.exists()
    assert model.cli("run", "-q", "--force", "train", env=STEP_ENV).returncode == 0
    done = model.cli("predict", "rows.jsonl")
    assert (done.returncode, done.stdout) == (0, PREDICTIONS), done.stderr
    assert not marker.exists()


def serving_copy(ws: Workspace) -> Path:
    copies = list((ws.root / ".mlbuild" / "serving" / "objects").glob("*/model.joblib"))
    assert len(copies) == 1
    return copies[0]


def test_a_pickle_swapped_into_the_serving_copy_is_replaced_from_the_cache(
    model: Workspace, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    assert model.cli("predict", "rows.jsonl").stdout == PREDICTIONS
    swap(serving_copy(model), marker)
    done = model.cli("predict", "rows.jsonl")
    assert (done.returncode, done.stdout) == (0, PREDICTIONS), done.stderr
    assert not marker.exists()
    moved = list((model.root / ".mlbuild" / "serving" / "quarantine").iterdir())
    assert [p.name.split(".")[0] for p in moved] == ["model"]

    swap(serving_copy(model), marker)
    server = Server(model)
    try:
        status, body = server.json(
            "POST", "/invocations", {"dataframe_split": {"data": [[0.05, 0.1], [1.0, 0.95]]}}
        )
        assert (status, body) == (200, {"predictions": [0, 1]})
    finally:
        assert server.stop()[0] == 0
    assert not marker.exists()


def test_a_copy_swapped_after_it_was_checked_is_refused_when_it_is_loaded(
    model: Workspace, tmp_path: Path
) -> None:
    """The window between ``resolve_model`` and a server worker's load: the runtime hashes the
    file again right before unpickling it."""
    marker = tmp_path / "marker"
    code = f"""
import pathlib, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from mlbuild.graph import Workspace
from mlbuild.serve import ModelRuntime, resolve_model
from tests.cache.test_serving_integrity import swap
ws = Workspace.find(pathlib.Path.cwd())
source = resolve_model(ws, ws.graph([]))
swap(pathlib.Path(source.artifacts["model"]), pathlib.Path({str(marker)!r}))
try:
    ModelRuntime.load(source)
except Exception as exc:
    print(type(exc).__name__, exc)
"""
    done = model.cli_python(code)
    assert done.returncode == 0, done.stderr
    copy = next((model.root / ".mlbuild" / "serving" / "objects").iterdir()) / "model.joblib"
    moved = next((model.root / ".mlbuild" / "serving" / "quarantine").iterdir())
    assert done.stdout == (
        f"CacheError model artifact 'model' at {copy} is not the file the step produced (its "
        f"content does not hash to {copy.parent.name[:12]}); it was moved to {moved} and was "
        "not loaded; run the command again to copy the artifact from the cache\n"
    )
    assert not marker.exists()
