"""The command line of ``mlbuild search``."""

from __future__ import annotations

import argparse

from mlbuild.cli.parser import whole_number


def add_search(p: argparse.ArgumentParser) -> None:
    p.description = (
        "mlbuild search NAME [OVERRIDE...]: run the recipe's search NAME (each trial a "
        "cached, recorded run of its step). mlbuild search show NAME: the best trial, the top "
        "trials and the parameters' importances. mlbuild search dashboard NAME: optuna-dashboard "
        "on the study."
    )
    p.add_argument(
        "words",
        nargs="+",
        metavar="NAME|show NAME|dashboard NAME",
        help="the search, then Hydra overrides for every trial",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=whole_number(1, 256),
        default=1,
        metavar="N",
        help="worker processes on this machine, each in its own copy of the workspace (default 1)",
    )
    p.add_argument(
        "--worker",
        action="store_true",
        help="run one worker that joins the study (start it on several machines that share a "
        "PostgreSQL storage); prints no summary",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--top",
        type=whole_number(1, 100_000),
        default=10,
        metavar="K",
        help="show: trials listed (10)",
    )
    p.add_argument(
        "--study", metavar="NAME", help="show, dashboard: this study instead of the current one"
    )
    p.add_argument(
        "--plots",
        metavar="DIR",
        help="show: also write Optuna's plots as HTML files into DIR",
    )
    p.add_argument("--host", default="127.0.0.1", help="dashboard: address (127.0.0.1)")
    p.add_argument(
        "--port", type=whole_number(0, 65535), default=8080, help="dashboard: port (default 8080)"
    )
    p.set_defaults(handler="mlbuild.cli.search_commands:cmd_search")
