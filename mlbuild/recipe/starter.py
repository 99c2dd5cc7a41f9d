"""``mlbuild init``: a starter ``ml.yaml`` written from what the repository already has."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mlbuild.errors import UsageError
from mlbuild.recipe import RECIPE_FILE, SCHEMA_FILE
from mlbuild.recipe.loader import parse_recipe

_SCRIPTS = ("prepare", "featurize", "train", "evaluate")


def write_starter(root: Path, *, name: str | None, force: bool) -> Path:
    """Write ``root/ml.yaml`` and return its path; refuses to overwrite without ``force``."""
    target = root / RECIPE_FILE
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; pass --force to overwrite it")
    text = starter_text(root, name)
    parse_recipe(text, str(target))  # what we write must load
    tmp = target.with_name(f".{RECIPE_FILE}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target


def starter_text(root: Path, name: str | None) -> str:
    project = _slug(name or root.resolve().name)
    lines = [
        f"# yaml-language-server: $schema={SCHEMA_FILE}",
        "schema_version: 1",
        f"name: {project}",
        "environment:",
        f'  python: "{sys.version_info.major}.{sys.version_info.minor}"',
    ]
    if (root / "Pipfile").exists():
        lines.append("  pipfile: Pipfile")
    else:
        lock = next(
            (p for p in ("requirements.lock", "requirements.txt") if (root / p).exists()), None
        )
        if lock:
            lines.append(f"  requirements: {lock}")
    # DVC's convention: scripts read params.yaml themselves (it is a dep of each of them)
    params_file = next(
        (
            f
            for f in ("params.yaml", "params.yml", "params.json", "params.toml")
            if (root / f).is_file()
        ),
        None,
    )
    if (root / "conf" / "config.yaml").exists():
        lines += ["params:", "  config_dir: conf", "  config_name: config"]
        if params_file:
            lines.append(f"  files: [{params_file}]")
    elif params_file:
        lines.append(f"params: {params_file}  # overrides (key=value) are written into it")
    lines.append("steps:")
    scripts = _scripts(root)
    if not scripts:
        lines += [
            "  train:",
            "    # replace with your training command; list what it reads and writes",
            "    cmd: python -c \"print('hello from mlbuild')\"",
            "    deps: []",
            "    outs: []",
        ]
    previous: str | None = None
    for step, script in scripts:
        deps = ", ".join([script, *([params_file] if params_file else [])])
        lines += [f"  {step}:", f"    cmd: python {script}", f"    deps: [{deps}]"]
        if previous:
            lines.append(f"    needs: [{previous}]")
        lines.append("    outs: []  # list the files this step writes")
        previous = step
    return "\n".join(lines) + "\n"


def _scripts(root: Path) -> list[tuple[str, str]]:
    found = []
    for step in _SCRIPTS:
        for folder in ("", "src/"):
            if (root / f"{folder}{step}.py").is_file():
                found.append((step, f"{folder}{step}.py"))
                break
    return found


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return slug or "project"
