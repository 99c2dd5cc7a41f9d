"""The command line's grammar (mlbuild/cli/parser.py): every command is listed and answers
``--help``, although a command's parser is built only when that command is chosen."""

from __future__ import annotations

import pytest

from mlbuild.cli.main import main
from mlbuild.cli.parser import COMMANDS, build_parser

NAMES = (
    *("init", "validate", "plan", "run", "status", "serve", "predict", "schema", "data", "push"),
    *("cache", "gc", "search", "test", "runs", "model", "diff", "ci", "env", "package", "publish"),
)


def test_the_table_holds_every_command_in_the_order_help_lists_them() -> None:
    assert tuple(COMMANDS) == NAMES


def test_help_lists_every_command_with_its_one_line_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per command
    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mlbuild [-h] [--version] [-C DIR] [-f FILE] COMMAND ...\n")
    listed = out.split("  COMMAND\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split(None, 1) for line in listed] == [[n, t] for n, (t, _) in COMMANDS.items()]


@pytest.mark.parametrize("name", NAMES)
def test_each_command_builds_its_parser_and_answers_help(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main([name, "--help"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: mlbuild {name} [-h]")


def test_no_command_prints_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: mlbuild ")


def test_an_unknown_command_is_refused_with_every_command_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["frobnicate"]) == 2
    choices = ", ".join(f"'{name}'" for name in NAMES)
    assert capsys.readouterr().err == (
        f"mlbuild: argument COMMAND: invalid choice: 'frobnicate' (choose from {choices})\n"
        "run `mlbuild --help` for usage\n"
    )


def test_a_bad_option_of_a_command_is_refused_by_that_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["gc", "--keep-days", "-1"]) == 2
    assert capsys.readouterr().err == (
        "mlbuild: argument --keep-days: expected a number of days, 0 or more, got '-1'\n"
        "run `mlbuild gc --help` for usage\n"
    )


def test_options_may_still_be_abbreviated_and_come_among_the_words() -> None:
    args = build_parser().parse_args(["--fi", "other.yaml", "run", "a", "--multi", "b", "-j", "3"])
    assert (args.file, args.command, args.args, args.multirun, args.jobs) == (
        "other.yaml",
        "run",
        ["a", "b"],
        True,
        3,
    )
    assert build_parser().parse_args(["--vers"]).version is True
    assert build_parser().parse_args(["runs", "list", "--lim", "5"]).limit == 5


def test_commands_are_not_abbreviated(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ru"]) == 2
    assert "invalid choice: 'ru'" in capsys.readouterr().err
