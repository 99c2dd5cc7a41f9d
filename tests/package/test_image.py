"""Images through the real Docker engine, pushed to a real registry (Debian's docker-registry):
build, smoke-test, push, pull back by digest, run the pulled image, predict, compare.

One session fixture builds and publishes the iris example once (the wheels are fetched once);
the tests read what it made, then change one thing each.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.package.conftest import Registry, docker_ready, start_registry
from tests.serve.conftest import FLOWERS, MEASUREMENTS, SPECIES, free_port
from tests.test_example_iris import EXAMPLE, STEP_ENV

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(docker_ready() is not None, reason=f"{docker_ready()}"),
]

CANARY = f"canary-{uuid.uuid4().hex}"  # a registry password that must appear nowhere
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=check, timeout=600
    )


@dataclass
class Published:
    ws: Workspace
    image: str
    registry: Registry
    stdout: str
    stderr: str

    @property
    def reference(self) -> str:
        return self.stdout.splitlines()[-1]


def package_section(image: str, registry: str, port: int = 8080) -> str:
    return (
        "\npackage:\n"
        "  bundle: dist/iris.tar.gz\n"
        f"  docker: {{image: {image}, base: 'mlbuild-base:bookworm', registry: '{registry}', "
        f"port: {port}, labels: {{org.opencontainers.image.vendor: tests}}}}\n"
    )


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[Published]:
    root = tmp_path_factory.mktemp("image") / "iris"

    def generated(folder: str, names: list[str]) -> set[str]:
        at_top = Path(folder) == EXAMPLE
        outputs = {"data", "model", "metrics.json", ".mlbuild"}
        return {n for n in names if n == "__pycache__" or (at_top and n in outputs)}

    shutil.copytree(EXAMPLE, root, ignore=generated)
    image = f"mlbuild-test-pkg-{uuid.uuid4().hex[:8]}"
    ws = Workspace(root)
    recipe = (root / "ml.yaml").read_text()  # the example's package: section, made the test's
    recipe = recipe[: recipe.index("\n# How the model ships")]
    (root / "ml.yaml").write_text(recipe + package_section(image, registry.address))
    subprocess.run(["git", "init", "-q", "."], cwd=root, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-qm", "iris"], cwd=root, check=True)
    run = ws.run_json(env=STEP_ENV)
    done = ws.cli("model", "register", run["run_id"], "--name", "iris")
    assert done.returncode == 0, done.stderr
    done = ws.cli("test", env=STEP_ENV, timeout=900)  # the release gates publish requires
    assert done.returncode == 0, done.stdout + done.stderr
    env = {"MLBUILD_REGISTRY_USER": "ci", "MLBUILD_REGISTRY_PASSWORD": CANARY}
    done = ws.cli("publish", env=env, timeout=1800)
    assert done.returncode == 0, done.stderr
    try:
        yield Published(ws, image, registry, done.stdout, done.stderr)
    finally:
        listed = docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout
        for ref in listed.split():
            if image in ref:
                docker("rmi", "-f", ref, check=False)


def inspect(ref: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(docker("image", "inspect", ref).stdout)[0]
    return found


def test_publish_pushes_the_version_by_digest(published: Published) -> None:
    lines = published.stdout.splitlines()
    assert lines[0] == f"published {published.registry.address}/{published.image}:1"
    assert lines[1].startswith(f"{published.registry.address}/{published.image}@sha256:")
    assert "smoke test passed: ready in" in published.stderr
    assert "3 rows predicted as in-process" in published.stderr


def test_the_pulled_image_predicts_what_the_model_predicts_in_process(
    published: Published,
) -> None:
    ref = published.reference
    docker("rmi", "-f", ref, check=False)
    docker("pull", ref)
    port = free_port()
    container = docker("run", "-d", "-p", f"127.0.0.1:{port}:8080", ref).stdout.strip()
    try:
        import time
        import urllib.request

        rows = "\n".join([",".join(MEASUREMENTS), *(",".join(map(str, f)) for f in FLOWERS)])
        for _ in range(240):
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations",
                    data=rows.encode(),
                    headers={"Content-Type": "text/csv"},
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    answer = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError(docker("logs", container, check=False).stderr)
    finally:
        docker("rm", "-f", container, check=False)
    assert answer["predictions"]["species"] == SPECIES
    (published.ws.root / "rows.csv").write_text(rows + "\n")
    local = published.ws.cli("predict", "rows.csv")
    assert [line.split(",")[-1] for line in local.stdout.splitlines()[1:]] == SPECIES


def test_the_image_runs_as_a_non_root_user(published: Published) -> None:
    ref = f"{published.image}:1"
    assert inspect(ref)["Config"]["User"] == "10001:10001"
    uid = docker("run", "--rm", "--entrypoint", "id", ref, "-u").stdout.strip()
    assert uid == "10001"
    health = inspect(ref)["Config"]["Healthcheck"]["Test"]
    assert "http://127.0.0.1:8080/v2/health/ready" in health[-1]


def test_the_labels_carry_the_provenance(published: Published) -> None:
    labels = inspect(f"{published.image}:1")["Config"]["Labels"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=published.ws.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    run_id = json.loads(published.ws.cli("model", "list", "--json").stdout)[0]["run_id"]
    assert labels["org.opencontainers.image.revision"] == head
    assert labels["dev.mlbuild.git.dirty"] == "false"
    assert labels["dev.mlbuild.run-id"] == run_id
    assert labels["dev.mlbuild.model.name"] == "iris"
    assert labels["dev.mlbuild.model.version"] == "1"
    assert labels["org.opencontainers.image.version"] == "1"
    assert len(labels["dev.mlbuild.recipe-hash"]) == 64
    assert len(labels["dev.mlbuild.lock-hash"]) == 64
    assert labels["org.opencontainers.image.created"].endswith("+00:00")
    assert "dev.mlbuild.data-versions" in labels
    assert labels["org.opencontainers.image.vendor"] == "tests"


def test_no_secret_in_any_layer_or_the_history(published: Published, tmp_path: Path) -> None:
    ref = f"{published.image}:1"
    history = docker("history", "--no-trunc", ref).stdout
    assert CANARY not in history and "PASSWORD" not in history
    saved = tmp_path / "image.tar"
    docker("save", "-o", str(saved), ref)
    assert CANARY.encode() not in saved.read_bytes()
    with tarfile.open(saved) as outer:  # and in no layer, compressed or not
        for member in outer.getmembers():
            if member.isfile():
                data = outer.extractfile(member)
                assert data is not None and CANARY.encode() not in data.read()
    assert CANARY not in published.stdout + published.stderr


def test_publishing_the_same_version_again_is_a_no_op(published: Published) -> None:
    done = published.ws.cli("publish", timeout=900)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"{published.registry.address}/{published.image}:1 already holds this model: "
        f"{published.reference} (nothing pushed)\n"
    )


def test_other_content_under_a_published_tag_is_refused(published: Published) -> None:
    ws = published.ws
    recipe = ws.read("ml.yaml")
    local = inspect(f"{published.image}:1")["Id"]
    try:
        ws.recipe(recipe.replace("port: 8080", "port: 8081"))
        done = ws.cli("publish", timeout=900)
        assert done.returncode == 1
        assert inspect(f"{published.image}:1")["Id"] == local  # the refused build is not tagged
        assert done.stderr.splitlines()[-1].startswith(
            f"mlbuild: {published.registry.address}/{published.image}:1 already holds another "
            "image (content "
        )
        assert done.stderr.rstrip().endswith(
            "a published version is never overwritten: register the model again (`mlbuild model "
            "register RUN --name iris`) and publish the new version"
        )
    finally:
        ws.recipe(recipe)


def test_a_model_only_change_reuses_the_dependency_layers(published: Published) -> None:
    ws = published.ws
    before = inspect(f"{published.image}:1")["RootFS"]["Layers"]
    assert ws.run_json("train.seed=7", env=STEP_ENV)["steps"]
    done = ws.cli(  # a model its tests never ran for: the gate is not what this test is about
        "package",
        "--target",
        "docker",
        "--json",
        "--allow-failing-tests",
        "train.seed=7",
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    after = inspect(json.loads(done.stdout)["image"]["image_id"])["RootFS"]["Layers"]
    assert after[:-2] == before[:-2]  # base, user, dependencies, runtime, mlbuild
    assert after[-1] != before[-1]  # the model's files


def test_the_dockerfile_is_printed_in_layer_order(published: Published) -> None:
    text = published.ws.cli("package", "--dockerfile").stdout
    order = [
        text.index("FROM mlbuild-base:bookworm AS dependencies"),
        text.index("--no-index"),
        text.index("COPY --from=dependencies /opt/venv /opt/venv"),
        text.index("COPY --from=runtime"),
        text.index("USER 10001:10001"),
        text.index("HEALTHCHECK"),
        text.index("COPY model-code/"),
        text.index("COPY model-files/"),
        text.index("LABEL "),
    ]
    assert order == sorted(order)
    assert "ARG" not in text and "PASSWORD" not in text


def test_an_unreachable_registry_is_named(published: Published) -> None:
    ws = published.ws
    recipe = ws.read("ml.yaml")
    closed = f"127.0.0.1:{free_port()}"
    try:
        ws.recipe(recipe.replace(published.registry.address, closed))
        done = ws.cli("publish")
        assert done.returncode == 1
        assert done.stderr.startswith(f"mlbuild: cannot reach the registry {closed} (["), (
            done.stderr
        )
        assert done.stderr.endswith("start it, or fix package.docker.registry in ml.yaml\n")
    finally:
        ws.recipe(recipe)


def test_refused_credentials_are_named_and_never_shown(
    published: Published, tmp_path: Path
) -> None:
    import crypt  # deprecated, but the one bcrypt this machine has without a package

    secured, proc = start_registry(
        tmp_path, f"ci:{crypt.crypt('right', crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"
    )
    ws = published.ws
    recipe = ws.read("ml.yaml")
    try:
        ws.recipe(recipe.replace(published.registry.address, secured.address))
        done = ws.cli(
            "publish", env={"MLBUILD_REGISTRY_USER": "ci", "MLBUILD_REGISTRY_PASSWORD": CANARY}
        )
        assert done.returncode == 1
        assert done.stderr == (
            f"mlbuild: the registry {secured.address} refused the credentials of user 'ci'; check "
            f"them (`docker login {secured.address}`, or MLBUILD_REGISTRY_USER and "
            "MLBUILD_REGISTRY_PASSWORD)\n"
        )
        done = ws.cli("publish", env={"DOCKER_CONFIG": str(tmp_path)})
        assert "needs credentials and none were found" in done.stderr
    finally:
        ws.recipe(recipe)
        proc.terminate()
        proc.wait(timeout=10)


def test_no_engine_says_how_to_start_one(published: Published) -> None:
    done = published.ws.cli(
        "package", "--target", "docker", env={"DOCKER_HOST": "unix:///nonexistent.sock"}
    )
    assert done.returncode == 1
    assert done.stderr.endswith(
        "mlbuild: step 'package:docker' failed: cannot reach the Docker engine at "
        "unix:///nonexistent.sock (DOCKER_HOST): no "
        "socket there; start it (`sudo systemctl start docker`, or `sudo dockerd &`) or point "
        "DOCKER_HOST at a running engine; or package a bundle instead: `mlbuild package --target "
        "bundle`\n"
    )


def test_a_missing_base_image_is_named(published: Published) -> None:
    ws = published.ws
    recipe = ws.read("ml.yaml")
    try:
        ws.recipe(recipe.replace("mlbuild-base:bookworm", "mlbuild-missing:none"))
        done = ws.cli("package", "--target", "docker")
        assert done.returncode == 1
        assert done.stderr.endswith(
            "mlbuild: step 'package:docker' failed: the base image mlbuild-missing:none "
            "(package.docker.base) is not on this "
            "Docker engine; pull it (`docker pull mlbuild-missing:none`) or build it, then "
            "package again\n"
        )
    finally:
        ws.recipe(recipe)


def test_the_digest_and_registry_are_recorded_on_the_model_version(published: Published) -> None:
    versions = json.loads(published.ws.cli("model", "list", "--json").stdout)
    repository, digest = published.reference.split("@")
    assert versions[0]["images"] == [{"repository": repository, "digest": digest}]
    table = published.ws.cli("model", "list").stdout.splitlines()
    assert table[0].split()[-1] == "IMAGE"
    assert table[1].split()[-1] == f"{repository}@{digest[:19]}"


def test_the_labels_say_the_model_passed_its_release_gates(published: Published) -> None:
    labels = inspect(f"{published.image}:1")["Config"]["Labels"]
    assert labels["dev.mlbuild.tests"] == "passed"


def test_a_model_whose_tests_did_not_run_is_refused_unless_allowed(published: Published) -> None:
    ws = published.ws
    assert ws.cli("run", "train.seed=11", env=STEP_ENV).returncode == 0
    done = ws.cli("package", "--target", "bundle", "train.seed=11")
    assert done.returncode == 1
    assert "refusing to package model 'iris' version " in done.stderr
    assert "its tests did not pass for this exact model (not run for this model: " in done.stderr
    allowed = ws.cli("package", "--target", "bundle", "--allow-failing-tests", "train.seed=11")
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: package with --allow-failing-tests: not run for this model: " in allowed.stderr


def image_step(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    steps = {s["name"]: s for s in json.loads(done.stdout)["steps"]}
    found: dict[str, Any] = steps["package:docker"]
    return found


def test_the_image_step_is_cached_until_the_image_is_deleted(published: Published) -> None:
    ws = published.ws
    built = image_step(ws.cli("run", "package:docker", "--json", env=STEP_ENV, timeout=1800))
    image = built["data"]
    assert inspect(image["reference"])["Id"] == image["image_id"]
    again = image_step(ws.cli("run", "package:docker", "--json", env=STEP_ENV))
    assert (again["status"], again["data"]["image_id"]) == ("cached", image["image_id"])
    docker("rmi", image["reference"])
    plan = json.loads(ws.cli("plan", "package:docker", "--json").stdout)[0]["steps"][-1]
    assert (plan["name"], plan["action"], plan["reasons"]) == (
        "package:docker",
        "run",
        [
            f"image {image['reference']} ({image['image_id'][:19]}) is no longer on the Docker "
            "engine"
        ],
    )
    rebuilt = image_step(ws.cli("run", "package:docker", "--json", env=STEP_ENV, timeout=1800))
    assert rebuilt["status"] == "ran"
    assert inspect(image["reference"])["Id"] == rebuilt["data"]["image_id"]


def test_without_an_engine_plan_says_it_cannot_vouch_for_the_image(published: Published) -> None:
    ws = published.ws
    image = image_step(ws.cli("run", "package:docker", "--json", env=STEP_ENV, timeout=1800))
    done = ws.cli(
        "plan", "package:docker", "--json", env={"DOCKER_HOST": "unix:///nonexistent.sock"}
    )
    step = json.loads(done.stdout)[0]["steps"][-1]
    assert step["action"] == "run"
    (why,) = step["reasons"]
    assert why.startswith(
        f"cannot ask the Docker engine whether image {image['data']['reference']} is still there ("
    )


def test_the_venv_holds_only_the_lock_without_sources_or_symbols(published: Published) -> None:
    image = image_step(published.ws.cli("run", "package:docker", "--json", env=STEP_ENV))
    probe = (
        "import glob, sys; sys.path.insert(0, '/opt/mlbuild/lib');"
        "from mlbuild.package.elfstrip import strip;"
        "site = '/opt/venv/lib/python3.11/site-packages';"
        "libs = glob.glob(site + '/**/*.so*', recursive=True);"
        "print(len(libs), sum(strip(open(f, 'rb').read()) is not None for f in libs),"
        " sorted({p.rsplit('.', 1)[-1] for p in glob.glob(site + '/**/*.*', recursive=True)"
        " if p.endswith(('.pyx', '.pxd', '.pyi', '.c', '.h'))}),"
        " [n for n in ('pip', 'setuptools', 'pkg_resources') if glob.glob(f'{site}/{n}')])"
    )
    done = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "/opt/venv/bin/python",
        image["data"]["reference"], "-c", probe,
    )  # fmt: skip
    count, unstripped, *rest = done.stdout.strip().split(maxsplit=2)
    assert int(count) > 50 and unstripped == "0"
    assert rest == ["[] []"]


def test_the_image_runs_with_oo_sources_without_docstrings_and_one_copy_of_each_library(
    published: Published,
) -> None:
    image = image_step(published.ws.cli("run", "package:docker", "--json", env=STEP_ENV))
    probe = (
        "import glob, os, sys; site = '/opt/venv/lib/python3.11/site-packages';"
        "text = open(site + '/sklearn/base.py').read();"
        "links = sorted(os.path.relpath(p, site) + ' -> ' + os.readlink(p)"
        " for p in glob.glob(site + '/*.libs/*') if os.path.islink(p));"
        "print(sys.flags.optimize, 'Base classes for all estimators' in text,"
        " '# ' in open('/opt/mlbuild/lib/mlbuild/serve/app.py').read(), *links, sep='\\n')"
    )
    done = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "/opt/venv/bin/python",
        image["data"]["reference"], "-c", probe,
    )  # fmt: skip
    optimize, docstring, comment, *links = done.stdout.splitlines()
    # docstrings are never compiled under -OO: the smoke test (publish, above) served the model
    assert (optimize, docstring, comment) == ("2", "False", "False")
    assert any(link.startswith("scipy.libs/libgfortran") for link in links), links
    assert all(" -> ../numpy.libs/" in link for link in links), links
