"""Compare what two revisions' command lines answer, without running any command.

    python bench/cli_answers.py main HEAD

For each revision (exported with `git archive`), every command and subcommand found by following
`--help` is asked for `--help`, `-h` and an unknown option, plus a fixed list of usage errors,
abbreviations and bad values; only the parser runs (no handler). Prints the cases that differ
and exits 1, or says they are identical. Written for issue 15, when the parser became lazy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

EXTRA = [
    [],
    ["frobnicate"],
    ["ru"],
    ["--vers"],
    ["--version"],
    ["-C"],
    ["--fi"],
    ["-f"],
    ["--file=x", "frob"],
    ["-C", ".", "--version"],
    ["--version", "run"],
    ["run", "--version"],
    ["run", "--mult", "--help"],
    ["run", "--jobs", "many"],
    ["plan", "--dr"],
    ["runs", "lis", "--help"],
    ["cache", "pu"],
    ["serve", "--max-body-size", "x"],
    ["gc", "--keep-days", "-1"],
    ["publish", "--version", "x"],
    ["diff", "--json", "--format", "text"],
]

# Runs in the exported tree: parses each case with a fresh parser, never calls a handler.
PROBE = r"""
import contextlib, io, json, re, sys
from mlbuild.cli.main import build_parser

def ask(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result = "parsed " + repr(sorted(vars(build_parser().parse_args(argv)).items()))
        except SystemExit as exc:
            result = f"exit {exc.code}"
        except Exception as exc:
            result = f"{type(exc).__name__}: {exc}"
    return {"argv": argv, "result": result, "stdout": out.getvalue(), "stderr": err.getvalue()}

answers, paths = [], [[]]
while paths:
    path = paths.pop(0)
    helped = ask([*path, "--help"])
    answers += [helped, ask([*path, "-h"]), ask([*path, "--no-such-option"])]
    paths += [[*path, name] for name in re.findall(r"^    (\S+)", helped["stdout"], re.M)]
answers += [ask(list(argv)) for argv in json.loads(sys.argv[1])]
print(json.dumps(answers))
"""


def answers(revision: str, tmp: Path) -> list[dict[str, object]]:
    tree = tmp / revision.replace("/", "_")
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", revision], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(EXTRA)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "COLUMNS": "100", "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    )
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


def main() -> int:
    before, after = sys.argv[1:3]
    with tempfile.TemporaryDirectory() as tmp:
        old, new = answers(before, Path(tmp)), answers(after, Path(tmp))
    differ = [(a, b) for a, b in zip(old, new, strict=False) if a != b]
    if len(old) != len(new):
        print(f"{before}: {len(old)} cases, {after}: {len(new)} cases")
    for a, b in differ:
        print(f"mlbuild {' '.join(map(str, a['argv']))}:\n  {before}: {a}\n  {after}: {b}")
    if differ or len(old) != len(new):
        return 1
    print(f"{len(old)} cases, identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
