"""The command line of ``mlbuild test``: the model's declared tests, as cached release gates."""

from __future__ import annotations

import argparse
import os

from mlbuild.cli.shared import add_record_options


def add_test(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Bring what the tests read up to date (the model's steps, the steps whose "
        "metrics they check), check every test's inputs, then run each test that has no "
        "verdict for its exact fingerprint. Exit 0 when all passed, 1 when one failed or could "
        "not run, 2 for bad input (reported before any test runs)."
    )
    p.add_argument(
        "args",
        nargs="*",
        metavar="TEST|OVERRIDE",
        help="tests to run (default: all), Hydra overrides, and optionally the recipe (a word "
        "ending in .yaml or .yml, like -f)",
    )
    p.add_argument("--force", action="store_true", help="run the tests even if cached")
    p.add_argument(
        "--junit", metavar="FILE", help="write a JUnit XML report (GitLab's test report widget)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument(
        "--check",
        action="store_true",
        help="run nothing: exit 0 if every declared test passed for the model as built now, "
        "1 (naming them) if one failed or did not run — the gate package, publish and deploy "
        "apply",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="steps to run at once (default: the number of CPUs)",
    )
    add_record_options(p)
    p.set_defaults(handler="mlbuild.cli.test_commands:cmd_test")
