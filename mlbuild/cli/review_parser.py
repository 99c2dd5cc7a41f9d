"""The command lines of ``mlbuild diff`` and ``mlbuild ci``: for reviewers and CI pipelines."""

from __future__ import annotations

import argparse


def add_diff(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Compare the resolved recipes of A and B: steps, params (Hydra trees "
        "included), data versions, the environment lock, the model and any other section, and "
        "what a run at B takes from the cache. A and B are git revisions (`main`, `HEAD~2`, "
        "`main..HEAD`, `main...HEAD`) or recipe files; without B the working tree is compared; "
        "without A, the merge base of the default branch."
    )
    p.add_argument(
        "args",
        nargs="*",
        metavar="A [B] [OVERRIDE]",
        help="revisions or recipe files, and Hydra overrides applied to both sides",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="text for a terminal, markdown for a merge-request comment, json for tools",
    )
    fmt.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here, not to stdout")
    p.set_defaults(handler="mlbuild.cli.review_commands:cmd_diff")


def add_ci(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler="mlbuild.cli.review_commands:cmd_ci")
    ci = p.add_subparsers(dest="ci_command", metavar="SUBCOMMAND")
    g = ci.add_parser(
        "gitlab",
        help="write .gitlab-ci.yml for this model repository (or check that it is current)",
    )
    mode = g.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="exit 1 with a diff when the committed file is not what mlbuild would write",
    )
    mode.add_argument("--stdout", action="store_true", help="print the pipeline, write nothing")
    mode.add_argument(
        "--template",
        metavar="FILE",
        help="write the reusable include: template (hidden .mlbuild-* jobs) to FILE instead",
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="replace a .gitlab-ci.yml that mlbuild did not write",
    )
    g.set_defaults(handler="mlbuild.cli.review_commands:cmd_ci_gitlab")
    m = ci.add_parser(
        "metrics",
        help="the last run's metrics in OpenMetrics text, for GitLab's metrics report",
    )
    m.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    m.set_defaults(handler="mlbuild.cli.review_commands:cmd_ci_metrics")
