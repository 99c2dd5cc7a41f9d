"""`mlbuild package` → a bundle, and `mlbuild serve BUNDLE` from a folder with no repository."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.serve.conftest import Server

RECIPE = """\
schema_version: 1
name: doubler
steps:
  train:
    cmd: python train.py
    deps: [train.py]
    outs: [model/factor.json]
model:
  name: doubler
  artifacts: {factor: model/factor.json}
  class: src/serve.py:Model
  signature:
    inputs: [{name: x, datatype: FP64, shape: [-1]}]
    outputs: [{name: y, datatype: FP64, shape: [-1]}]
package:
  bundle: %s
"""
SERVE_PY = """\
import json

from helpers import scale


class Model:
    def load(self, artifacts):
        self.factor = json.load(open(artifacts["factor"]))["factor"]

    def predict(self, inputs):
        return {"y": [scale(v, self.factor) for v in inputs["x"]]}
"""
TREE = {
    "train.py": "import json, os\nos.makedirs('model', exist_ok=True)\n"
    "json.dump({'factor': 2}, open('model/factor.json', 'w'))\n",
    "src": {"serve.py": SERVE_PY, "helpers.py": "def scale(v, f):\n    return v * f\n"},
}
PREDICT = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1.5, 4.0]}]}


def packaged(ws: Workspace, bundle: str = "dist/doubler.tar.gz") -> Workspace:
    ws.recipe(RECIPE % bundle).gen(TREE)
    assert ws.cli("run", "-q").returncode == 0
    done = ws.cli("package")
    assert done.returncode == 0, done.stderr
    return ws


@pytest.fixture
def elsewhere(make_ws: Callable[[str], Workspace]) -> Workspace:
    """A folder with no recipe, repository or cache."""
    return make_ws("elsewhere")


@pytest.mark.parametrize("bundle", ["dist/doubler.tar.gz", "dist/doubler"])
def test_a_bundle_serves_with_no_repository(
    ws: Workspace, elsewhere: Workspace, serving: list[Server], bundle: str
) -> None:
    done = packaged(ws, bundle)
    target = ws.root / bundle
    server = Server(elsewhere, str(target))
    serving.append(server)
    status, body = server.json("POST", "/v2/models/doubler/infer", PREDICT)
    assert status == 200, body
    assert body["outputs"][0]["data"] == [3.0, 8.0]
    assert not (elsewhere.root / ".mlbuild").exists()
    assert done is ws


def test_the_bundle_holds_the_model_its_code_signature_and_provenance(ws: Workspace) -> None:
    ws.gen({"requirements.lock": "alpha==1.0 --hash=sha256:" + "a" * 64 + "\n"})
    ws.recipe((RECIPE % "dist/b") + "environment: {requirements: requirements.lock}\n").gen(TREE)
    assert ws.cli("run", "-q").returncode == 0
    done = ws.cli("package", "--json")
    assert done.returncode == 0, done.stderr
    root = ws.root / "dist/b"
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert names == [
        "artifacts/factor/factor.json",
        "code/src/helpers.py",
        "code/src/serve.py",
        "manifest.json",
        "requirements.lock",
        "signature.json",
    ]
    manifest = json.loads((ws.root / "dist/b/manifest.json").read_text())
    assert manifest["model"]["class"] == "code/src/serve.py:Model"
    assert manifest["lock"]["source"] == "requirements.lock"
    assert set(manifest["provenance"]) >= {"commit", "dirty", "run_id", "recipe_hash", "lock_hash"}
    assert json.loads(done.stdout)["bundle"]["bundle"] == "dist/b"


def test_an_archive_is_the_same_bytes_for_the_same_model(ws: Workspace) -> None:
    packaged(ws)
    first = (ws.root / "dist/doubler.tar.gz").read_bytes()
    assert ws.cli("package").returncode == 0
    with tarfile.open(ws.root / "dist/doubler.tar.gz") as tar:
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    assert len(first) > 0


def test_a_changed_file_is_refused_before_anything_loads(
    ws: Workspace, elsewhere: Workspace
) -> None:
    packaged(ws, "dist/b")
    code = ws.root / "dist/b/code/src/helpers.py"
    os.chmod(code, 0o644)
    code.write_text("import os\nos.system('touch PWNED')\n")
    manifest = json.loads((ws.root / "dist/b/manifest.json").read_text())
    digest = manifest["files"]["code/src/helpers.py"]["digest"]
    done = elsewhere.cli("serve", str(ws.root / "dist/b"))
    assert done.returncode == 1
    assert done.stderr == (
        f"mlbuild: {code} does not hash to the digest in the bundle's manifest ({digest[:12]}): "
        "the bundle was altered or damaged; nothing was loaded — make it again with "
        "`mlbuild package`\n"
    )
    assert not (elsewhere.root / "PWNED").exists()


def test_a_file_the_manifest_does_not_list_is_refused(ws: Workspace, elsewhere: Workspace) -> None:
    packaged(ws, "dist/b")
    (ws.root / "dist/b/code/src/numpy.py").write_text("raise SystemExit('shadowed')\n")
    done = elsewhere.cli("serve", str(ws.root / "dist/b"))
    assert done.returncode == 1
    assert "files the manifest does not list: code/src/numpy.py" in done.stderr


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("../escape.py", tarfile.REGTYPE, "member '../escape.py' would be written outside"),
        ("/etc/evil", tarfile.REGTYPE, "member '/etc/evil' would be written outside"),
        ("link", tarfile.SYMTYPE, "'link' is a link or special file"),
    ],
)
def test_a_hostile_archive_is_refused(
    elsewhere: Workspace, name: str, kind: bytes, message: str
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    _archive(elsewhere.root / "b.tar.gz", [(info, b"x")])
    done = elsewhere.cli("serve", "b.tar.gz")
    assert done.returncode == 1
    assert done.stderr == f"mlbuild: b.tar.gz: {message}" + done.stderr.split(message, 1)[1]
    assert not (elsewhere.root.parent / "escape.py").exists()


def test_not_a_bundle(elsewhere: Workspace) -> None:
    (elsewhere.root / "b.tar.gz").write_bytes(b"\x1f\x8b junk")
    done = elsewhere.cli("serve", "b.tar.gz")
    assert done.returncode == 1
    assert done.stderr.startswith("mlbuild: b.tar.gz: not a readable .tar.gz bundle (")
    done = elsewhere.cli("serve", "missing.tar.gz")
    assert done.stderr == (
        "mlbuild: missing.tar.gz: no such bundle (a folder or .tar.gz `mlbuild package` wrote)\n"
    )


def test_a_bundle_takes_no_overrides(ws: Workspace) -> None:
    packaged(ws)
    done = ws.cli("serve", "dist/doubler.tar.gz", "model.x=1")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: a bundle is served as it was built: give no overrides with it\n"
    )


def test_package_refuses_to_replace_what_it_did_not_write(ws: Workspace) -> None:
    ws.recipe(RECIPE % "dist/doubler.tar.gz").gen(TREE)
    ws.gen({"dist": {"doubler.tar.gz": "my notes"}})
    assert ws.cli("run", "-q").returncode == 0
    done = ws.cli("package")
    assert done.returncode == 1
    assert done.stderr.endswith(
        "mlbuild: step 'package:bundle' failed: 'dist/doubler.tar.gz' exists and mlbuild did not "
        "create it; move it away or delete it, then run again\n"
    )
    assert ws.read("dist/doubler.tar.gz") == "my notes"


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        ("../out.tar.gz", "'../out.tar.gz'"),
        ("model", "'model' holds 'model/factor.json', written by step 'train'"),
        ("model/factor.json", "'model/factor.json' is also written by step 'train'"),
        (".git/b.tar.gz", ".git"),
        (".", "package.bundle"),
        ("ml.yaml", "the recipe"),
    ],
)
def test_a_bundle_path_outside_or_over_outputs_is_a_recipe_error(
    ws: Workspace, bundle: str, message: str
) -> None:
    ws.recipe(RECIPE % bundle).gen(TREE)
    done = ws.cli("package")
    assert done.returncode == 2
    assert "package.bundle" in done.stderr and message in done.stderr, done.stderr


def test_package_builds_the_model_it_packages_first(ws: Workspace) -> None:
    """The package steps depend on the model's artifacts: `package` trains when it must."""
    ws.recipe(RECIPE % "dist/b").gen(TREE)
    done = ws.cli("package")
    assert done.returncode == 0, done.stderr
    assert "train: running" in done.stderr
    assert (ws.root / "dist/b/manifest.json").is_file()


def test_package_without_a_package_section(ws: Workspace) -> None:
    ws.recipe((RECIPE % "x").split("package:")[0]).gen(TREE)
    done = ws.cli("package")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: ml.yaml has no package: section; add one, e.g. `package: {bundle: "
        "dist/model.tar.gz}` or `package: {docker: {image: NAME}}` (see `mlbuild schema`)\n"
    )


def statuses(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert done.returncode in (0, 1), done.stderr
    return {s["name"]: s["status"] for s in json.loads(done.stdout)["steps"]}


def test_run_trains_but_does_not_package_unless_asked(ws: Workspace) -> None:
    ws.recipe(RECIPE % "dist/b").gen(TREE)
    assert statuses(ws.cli("run", "--json")) == {"train": "ran"}
    assert not (ws.root / "dist").exists()
    plan = json.loads(ws.cli("plan", "--json").stdout)[0]["steps"]
    assert [s["name"] for s in plan] == ["train"]


def test_the_bundle_step_is_cached_and_plan_says_why_it_runs_again(ws: Workspace) -> None:
    ws.recipe(RECIPE % "dist/b").gen(TREE)
    assert statuses(ws.cli("run", "package:bundle", "--json")) == {
        "train": "ran",
        "package:bundle": "ran",
    }
    assert statuses(ws.cli("run", "package:bundle", "--json")) == {
        "train": "cached",
        "package:bundle": "cached",
    }
    done = ws.cli("package")  # the command is a view over the same step and cache
    assert "package:bundle: cached" in done.stderr
    assert done.stdout.startswith("bundle dist/b: model 'doubler' version ")
    ws.gen({"src": {"helpers.py": "def scale(v, f):\n    return f * v\n"}})
    plan = json.loads(ws.cli("plan", "package:bundle", "--json").stdout)[0]["steps"]
    assert [(s["name"], s["action"]) for s in plan] == [
        ("train", "cached"),
        ("package:bundle", "run"),
    ]
    (why,) = plan[1]["reasons"]
    assert why.startswith("dep src changed (") and why.endswith("): 1 modified (helpers.py)")
    assert "bundle model doubler into dist/b" in [s["what"] for s in plan]


def test_a_removed_bundle_is_restored_from_the_cache(ws: Workspace) -> None:
    packaged(ws)
    first = (ws.root / "dist/doubler.tar.gz").read_bytes()
    (ws.root / "dist/doubler.tar.gz").unlink()
    assert statuses(ws.cli("run", "package:bundle", "--json"))["package:bundle"] == "restored"
    assert (ws.root / "dist/doubler.tar.gz").read_bytes() == first
