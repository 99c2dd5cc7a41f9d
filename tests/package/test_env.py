"""`mlbuild env lock|check|build` and isolated steps, with pip-tools, pipenv and pip for real
against the session's own package index (tests/package/conftest.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.package.conftest import Index

RECIPE = """\
schema_version: 1
name: env
environment: {requirements: requirements.lock}
steps:
  use:
    cmd: python use.py
    deps: [use.py]
    outs: [out.txt]
"""
# a module the caller's interpreter has (mlbuild needs it) but the lock does not pin
USE_ALPHA = "import alpha\nopen('out.txt', 'w').write(alpha.VERSION)\n"
USE_YAML = "import alpha, yaml\nopen('out.txt', 'w').write(alpha.VERSION)\n"


def locked(ws: Workspace, index: Index, requirements: str = "alpha==1.0\n") -> Workspace:
    ws.recipe(RECIPE).gen({"requirements.in": requirements, "use.py": USE_ALPHA})
    done = ws.cli("env", "lock", env=index.env)
    assert done.returncode == 0, done.stderr
    return ws


def test_lock_writes_hashes_and_reports_what_changed(ws: Workspace, index: Index) -> None:
    ws.recipe(RECIPE).gen({"requirements.in": "beta==1.0\n"})
    done = ws.cli("env", "lock", env=index.env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "requirements.lock: created, 2 packages changed\n  + alpha 2.0\n  + beta 1.0\n"
    )
    lock = ws.read("requirements.lock")
    assert "--hash=sha256:" in lock and "127.0.0.1" not in lock  # no index URL written

    ws.gen({"requirements.in": "beta==1.0\nalpha<2\n"})
    done = ws.cli("env", "lock", env=index.env)
    assert done.stdout == (
        "requirements.lock: updated, 1 package changed\n  ~ alpha 2.0 → 1.0 (downgraded)\n"
    )
    done = ws.cli("env", "lock", "--json", env=index.env)
    assert json.loads(done.stdout) == {"lock": "requirements.lock", "created": False, "changes": []}


def test_lock_without_requirements_in_says_what_to_write(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = ws.cli("env", "lock")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "mlbuild: requirements.lock is written from requirements.in, which does not exist; list "
        "your direct dependencies there (one per line) and run `mlbuild env lock` again"
    )


def test_env_commands_need_a_declared_lock(ws: Workspace) -> None:
    ws.recipe("schema_version: 1\nname: x\nsteps: {a: {cmd: 'true'}}\n")
    done = ws.cli("env", "build")
    assert done.returncode == 1
    assert "the recipe declares no environment lock; add `environment: {pipfile: Pipfile}`" in (
        done.stderr
    )


def test_check_in_sync_and_out_of_sync(ws: Workspace, index: Index) -> None:
    locked(ws, index)
    built = json.loads(ws.cli("env", "build", "--json", env=index.env).stdout)
    python = built["python"]
    done = ws.cli("env", "check", "--python", python)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[0] == "lock: requirements.lock matches requirements.in"
    assert "satisfies the lock: 0 missing, 0 at another version, 0 not in the lock" in done.stdout

    ws.gen({"requirements.in": "alpha==2.0\ngamma\n"})  # edited, not locked again
    done = ws.cli("env", "check", "--python", python)
    assert done.returncode == 1
    assert done.stdout.splitlines()[:3] == [
        "lock: requirements.lock does not match requirements.in",
        "  alpha==2.0 (requirements.in:1) is not satisfied by alpha==1.0 in requirements.lock",
        "  gamma (requirements.in:2) is not pinned in requirements.lock",
    ]
    assert done.stdout.splitlines()[-1] == "fix: `mlbuild env lock`"


def test_check_names_missing_and_wrong_versions_with_the_fix(ws: Workspace, index: Index) -> None:
    locked(ws, index, "beta==1.0\n")
    # the caller's interpreter has neither alpha nor beta
    done = ws.cli("env", "check", "--python", sys.executable, "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["missing"] == ["alpha==2.0", "beta==1.0"]
    assert report["fix"] == [
        "pip install --require-hashes --no-deps -r requirements.lock",
        "mlbuild env build (and `mlbuild run --isolated`)",
    ]


def test_build_verifies_hashes_and_reuses_the_environment(ws: Workspace, index: Index) -> None:
    locked(ws, index)
    first = ws.cli("env", "build", env=index.env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(
        "built the environment of requirements.lock (1 packages, hashes verified) in "
    )
    again = json.loads(ws.cli("env", "build", "--json").stdout)  # no index needed: reused
    assert again["reused"] is True and again["packages"] == 1
    assert Path(again["path"]).parent == ws.root / ".mlbuild" / "cache" / "envs" or (
        Path(again["path"]).parent.name == "envs"
    )


def env_build_modules(ws: Workspace) -> set[str]:
    """The top-level modules `mlbuild env build` loads, with mlbuild's own by package."""
    probe = (
        "import sys, contextlib, io\n"
        "from mlbuild.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main(['env', 'build'])\n"
        "names = {m.split('.')[0] for m in sys.modules}\n"
        "names |= {'.'.join(m.split('.')[:2]) for m in sys.modules if m.startswith('mlbuild.')}\n"
        "print(code, ' '.join(sorted(names)))\n"
    )
    done = ws.cli_python(probe)
    code, _, modules = done.stdout.strip().splitlines()[-1].partition(" ")
    assert code == "0", done.stderr
    return set(modules.split())


def test_an_unchanged_lock_is_answered_without_pip_or_the_graph(
    ws: Workspace, index: Index
) -> None:
    locked(ws, index)
    assert ws.cli("env", "build", env=index.env).returncode == 0
    loaded = env_build_modules(ws)
    assert loaded & {"pip", "subprocess", "mlbuild.graph", "mlbuild.cache", "pydantic"} == set()
    again = json.loads(ws.cli("env", "build", "--json").stdout)
    assert again["reused"] is True and again["packages"] == 1


@pytest.mark.parametrize("change", ["lock", "recipe", "environment"])
def test_the_shortcut_is_not_taken_when_anything_changed(
    ws: Workspace, index: Index, change: str
) -> None:
    locked(ws, index)
    first = json.loads(ws.cli("env", "build", "--json", env=index.env).stdout)
    if change == "lock":  # another version pinned: another environment
        ws.gen({"requirements.in": "alpha==2.0\n"})
        assert ws.cli("env", "lock", env=index.env).returncode == 0
    elif change == "recipe":
        ws.recipe(RECIPE + "# a comment\n")
    else:  # the environment itself was deleted (gc, a hand): its own marker is gone
        (Path(first["path"]) / "mlbuild-env.json").unlink()
    if change == "recipe":  # the recipe is compiled again to learn which lock it names
        assert "mlbuild.graph" in env_build_modules(ws)
    again = json.loads(ws.cli("env", "build", "--json", env=index.env).stdout)
    assert again["reused"] is (change == "recipe")
    assert (again["path"] == first["path"]) is (change != "lock")


def test_build_refuses_a_wheel_whose_hash_is_not_the_locks(ws: Workspace, index: Index) -> None:
    locked(ws, index)
    lock = ws.read("requirements.lock")
    start = lock.index("--hash=sha256:") + len("--hash=sha256:")
    ws.gen({"requirements.lock": lock[:start] + "0" * 64 + lock[start + 64 :]})
    done = ws.cli("env", "build", env=index.env)
    assert done.returncode == 1
    assert "could not install the packages of requirements.lock (exit 1)" in done.stderr
    assert "DO NOT MATCH THE HASHES" in done.stderr
    envs = list((ws.root / ".mlbuild" / "cache" / "envs").glob("*-py*"))
    assert [e for e in envs if e.is_dir()] == []  # nothing half-built left


def test_build_refuses_a_lock_without_hashes(ws: Workspace) -> None:
    ws.recipe(RECIPE).gen({"requirements.lock": "alpha==1.0\n"})
    done = ws.cli("env", "build")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: requirements.lock pins alpha without hashes; mlbuild installs only hash-checked "
        "packages: regenerate the lock with `mlbuild env lock` (pip-compile --generate-hashes)\n"
    )


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        ("alpha>=1.0 --hash=sha256:" + "0" * 64, "requirements.lock:1: 'alpha>=1.0' does not pin"),
        ("-e ./alpha", "requirements.lock:1: '-e' is not supported in a lock"),
        ("alpha @ https://x/a.whl", "requirements.lock:1: 'alpha @ https://x/a.whl' installs"),
        ("alpha==1.0\n\nalpha==2.0", "requirements.lock:3: alpha is pinned twice"),
        (b"\xffalpha==1.0", "requirements.lock is not UTF-8"),
    ],
)
def test_a_malformed_lock_is_named_by_line(ws: Workspace, lock: str | bytes, message: str) -> None:
    ws.recipe(RECIPE).gen({"requirements.lock": lock})
    done = ws.cli("env", "build")
    assert done.returncode == 2
    assert done.stderr.startswith(f"mlbuild: {message}"), done.stderr


def test_an_isolated_step_cannot_import_what_the_lock_does_not_pin(
    ws: Workspace, index: Index
) -> None:
    locked(ws, index)
    ws.gen({"use.py": USE_YAML})
    # the caller's interpreter has yaml (mlbuild needs it); the lock does not pin it
    done = ws.cli("run", "--isolated", env=index.env)
    assert done.returncode == 1
    assert "step 'use' failed: command exited with code 1" in done.stderr
    assert "ModuleNotFoundError: No module named 'yaml'" in ws.read(".mlbuild/logs/use.log")
    assert ws.cli("run").returncode == 1  # and in the caller's, for alpha
    assert "No module named 'alpha'" in ws.read(".mlbuild/logs/use.log")

    ws.gen({"use.py": USE_ALPHA})
    done = ws.cli("run", "--isolated", "--json")
    assert done.returncode == 0, done.stderr
    assert ws.read("out.txt") == "1.0"


def test_environment_isolated_in_the_recipe_is_run_isolated(ws: Workspace, index: Index) -> None:
    locked(ws, index)
    assert ws.cli("run", "--isolated", env=index.env).returncode == 0
    ws.recipe(RECIPE.replace("requirements.lock}", "requirements.lock, isolated: true}"))
    assert json.loads(ws.cli("run", "--json").stdout)["steps"][0]["status"] == "cached"
    ws.recipe(RECIPE)  # back in the caller's interpreter, which has no alpha
    summary = json.loads(ws.cli("run", "--json").stdout)
    step = summary["steps"][0]
    assert step["status"] == "failed"
    assert "environment isolation changed: the step now runs in the caller's" in step["reasons"]


@pytest.mark.slow
def test_pipenv_lock_check_and_build(ws: Workspace, index: Index) -> None:
    ws.recipe(RECIPE.replace("requirements: requirements.lock", "pipfile: Pipfile")).gen(
        {
            "use.py": USE_ALPHA,
            "Pipfile": f"""\
                [[source]]
                url = "{index.url}"
                verify_ssl = false
                name = "local"

                [packages]
                alpha = "==1.0"
                """,
        }
    )
    done = ws.cli("env", "lock", env=index.env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Pipfile.lock: created, 1 package changed\n  + alpha 1.0\n"
    built = json.loads(ws.cli("env", "build", "--json", env=index.env).stdout)
    done = ws.cli("env", "check", "--python", built["python"], env=index.env, timeout=300)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[0] == "lock: Pipfile.lock matches Pipfile"

    ws.gen({"Pipfile": ws.read("Pipfile").replace('"==1.0"', '"==2.0"')})
    done = ws.cli("env", "check", "--python", built["python"], env=index.env, timeout=300)
    assert done.returncode == 1
    assert done.stdout.splitlines()[:2] == [
        "lock: Pipfile.lock does not match Pipfile",
        "  Pipfile.lock is out of date with Pipfile",
    ]
    assert ws.cli("run", "--isolated", env=index.env).returncode == 0
    assert ws.read("out.txt") == "1.0"
