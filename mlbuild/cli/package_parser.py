"""The command line of ``mlbuild env …``, ``mlbuild package`` and ``mlbuild publish``."""

from __future__ import annotations

import argparse

_COMMANDS = "mlbuild.cli.package_commands"


def add_env(env: argparse.ArgumentParser) -> None:
    actions = env.add_subparsers(dest="env_command", metavar="SUBCOMMAND", required=True)
    p = actions.add_parser(
        "lock", help="write the lock with pipenv (Pipfile) or pip-compile (requirements.in)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=f"{_COMMANDS}:cmd_env_lock")

    p = actions.add_parser(
        "check",
        help="does the lock match its Pipfile or requirements.in, and does the interpreter "
        "satisfy it (exit 1 when not)",
    )
    p.add_argument(
        "--python",
        metavar="PATH",
        help="the interpreter to check (default: `python` on PATH, which steps run)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=f"{_COMMANDS}:cmd_env_check")

    p = actions.add_parser(
        "build", help="create the environment from the lock (hashes verified), or reuse it"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=f"{_COMMANDS}:cmd_env_build")


def add_package(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides")
    p.add_argument(
        "--target",
        action="append",
        choices=("bundle", "docker"),
        help="build only this target (repeatable; default: every target declared)",
    )
    p.add_argument(
        "--dockerfile", action="store_true", help="print the generated Dockerfile and exit"
    )
    p.add_argument(
        "--allow-failing-tests",
        action="store_true",
        help="go on although the model's declared tests failed or did not run for it (recorded "
        "in the image's labels)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=f"{_COMMANDS}:cmd_package")


def add_publish(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides")
    p.add_argument(
        "--version",
        type=int,
        metavar="N",
        help="the registered model version to publish (default: the latest whose artifacts "
        "are the workspace's model)",
    )
    p.add_argument(
        "--allow-failing-tests",
        action="store_true",
        help="go on although the model's declared tests failed or did not run for it (recorded "
        "in the image's labels)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=f"{_COMMANDS}:cmd_publish")
