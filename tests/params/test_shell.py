"""Params in a string `cmd` can never change the command (mlbuild/params/shell.py): a value is
pasted only if it is inert, wherever the reference sits; anything else is refused when the recipe
is compiled, from the recipe, a Hydra config or the command line. A list `cmd` takes any value."""

from __future__ import annotations

import json
import re
import string
import subprocess

import pytest

from mlbuild.params import interpolate
from mlbuild.params.shell import unsafe_reason
from tests.conftest import Workspace

# one step per place a reference can sit; each prints the value on a line of its own
CONTEXTS = {
    "unquoted": "printf '%s\\n' ${params.x}",
    "double": "printf '%s\\n' \"${params.x}\"",
    "single": "printf '%s\\n' '${params.x}'",
    "sh_c": "sh -c 'printf \"%s\\n\" ${params.x}'",
    "bash_c": "bash -c \"printf '%s\\n' ${params.x}\"",
    "nested": "sh -c 'bash -c \"printf %s\\\\\\\\n ${params.x}\"'",
    "subst": "printf '%s\\n' \"$(printf '%s' ${params.x})\"",
    "backticks": "printf '%s\\n' `printf '%s' ${params.x}`",
    "assignment": "X=${params.x}; printf '%s\\n' \"$X\"",
    "case": "case ${params.x} in *) printf '%s\\n' ${params.x};; esac",
    "heredoc": "cat <<EOF\n${params.x}\nEOF",
    "heredoc_tabs": "cat <<-END\n\t${params.x}\n\tEND",
}

HOSTILE = {
    "$(touch pwned)": "it contains '$'",
    "`touch pwned`": "it contains '`'",
    '"; touch pwned; "': "it contains '\"'",
    "'; touch pwned; '": 'it contains "\'"',
    "a b": "it contains a space",
    "a\ntouch pwned": "it contains a line break",
    "a\ttouch": "it contains a tab",
    "*": "it contains '*'",
    "~": "it contains '~'",
    ";touch pwned": "it contains ';'",
    "|touch pwned": "it contains '|'",
    "&& touch pwned": "it contains '&'",
    "a>pwned": "it contains '>'",
    "\\": "it contains '\\\\'",
    "$HOME": "it contains '$'",
    "{a,b}": "it contains '{'",
    "#x": "it contains '#'",
    "a[1]": "it contains '['",
    "!x": "it contains '!'",
    "é": "it contains 'é'",
    "\x1b[31m": "it contains '\\x1b'",
    "": "it is empty, so it would vanish from the command line",
    "fi": "it is the shell keyword 'fi'",
}

BENIGN = ["0.1", "10", "1e-05", "-0.1", "data/train.csv", "true", "a:b", "user@host", "50%"]
BENIGN += ["1+2", "v1.2_3", "--flag=x", "=x", "EOF"]  # EOF: harmless unless it ends a heredoc


def recipe(values: list[object], contexts: dict[str, str] = CONTEXTS) -> str:
    """Params ``x0``, ``x1``… holding ``values``, and a step per value and context that writes
    what the command prints to ``CONTEXT_I.txt``."""
    params = ", ".join(f"x{i}: {json.dumps(v)}" for i, v in enumerate(values))
    steps = ""
    for i in range(len(values)):
        for name, cmd in contexts.items():
            text = f"( {cmd.replace('params.x', f'params.x{i}')}\n) > {name}_{i}.txt"
            steps += f"  {name}_{i}: {{cmd: {json.dumps(text)}, outs: [{name}_{i}.txt]}}\n"
    return f"schema_version: 1\nname: demo\nparams: {{{params}}}\nsteps:\n{steps}"


def hydra_quoted(value: str) -> str:
    """``value`` as a quoted string in Hydra's override grammar."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def message(step: str, value: str, reason: str, key: str = "x0") -> str:
    return (
        f"steps.{step}.cmd: param '{key}' = {json.dumps(value)} cannot be pasted into a shell "
        f"command ({reason}); use a list cmd, or read it from MLBUILD_PARAMS"
    )


# ---- the rule, checked against real shells ---------------------------------------------------


def test_exactly_the_inert_characters_are_accepted() -> None:
    inert = set(string.ascii_letters + string.digits + "._-/:=+,@%")
    for code in [*range(0x250), 0x2028, 0xFEFF, 0x1F600]:
        char = chr(code)
        assert (unsafe_reason(f"a{char}b") is None) is (char in inert), repr(char)


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("context", sorted(CONTEXTS))
def test_every_accepted_value_comes_out_literally_in_every_context(
    shell: str, context: str
) -> None:
    """Every printable character the rule accepts, alone, doubled, leading and inside a word,
    pasted into one script per context: the shell prints each value back as it is."""
    chars = [chr(code) for code in range(0x20, 0x7F)]  # all printable ASCII: what it accepts
    values = [v for c in chars for v in (c, c + c, f"{c}a", f"a{c}b")] + ["esac1", "done."]
    values = [v for v in values if unsafe_reason(v) is None and v not in ("EOF", "END")]
    script = "\n".join(
        interpolate(CONTEXTS[context], {"x": value}, for_shell=True) for value in values
    )
    done = subprocess.run([shell, "-c", script], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == values


# ---- end to end: `mlbuild run` ---------------------------------------------------------------


def refusals(stderr: str) -> list[str]:
    """The refusals in ``stderr``, without their positions."""
    located = re.compile(r"^(mlbuild: )?ml\.yaml:\d+:\d+: ")
    return sorted(located.sub("", line) for line in stderr.splitlines() if "be pasted" in line)


def all_refused() -> list[str]:
    return sorted(
        message(f"{name}_{i}", value, HOSTILE[value], key=f"x{i}")
        for i, value in enumerate(HOSTILE)
        for name in CONTEXTS
    )


def test_hostile_values_in_the_recipe_are_refused_in_every_context(ws: Workspace) -> None:
    done = ws.recipe(recipe(list(HOSTILE))).cli("run")
    assert done.returncode == 2, done.stderr
    first = message("unquoted_0", "$(touch pwned)", "it contains '$'")
    assert done.stderr.startswith(f"mlbuild: ml.yaml:5:21: {first}\n")
    assert refusals(done.stderr) == all_refused()
    assert sorted(p.name for p in ws.root.iterdir()) == [".mlbuild", "ml.yaml"]


def test_hostile_values_from_the_command_line_are_refused_with_exit_2(ws: Workspace) -> None:
    ws.recipe(recipe([1] * len(HOSTILE)))
    overrides = [f"x{i}={hydra_quoted(value)}" for i, value in enumerate(HOSTILE)]
    for command in ("validate", "run"):
        done = ws.cli(command, *overrides)
        assert done.returncode == 2, done.stderr
        assert refusals(done.stderr) == all_refused()
    assert sorted(p.name for p in ws.root.iterdir()) == [".mlbuild", "ml.yaml"]


def test_a_hostile_value_from_a_hydra_config_is_refused(ws: Workspace) -> None:
    ws.recipe(recipe([1]).replace("params: {x0: 1}", "params: {config_dir: conf}"))
    ws.gen({"conf": {"config.yaml": "x0: $(touch pwned)\n"}})
    done = ws.cli("run")
    assert done.returncode == 2
    expected = message("unquoted_0", "$(touch pwned)", "it contains '$'")
    assert done.stderr.startswith(f"mlbuild: ml.yaml:5:21: {expected}\n")
    assert not (ws.root / "pwned").exists()


@pytest.mark.parametrize("source", ["recipe", "override"])
def test_benign_values_work_in_every_context(ws: Workspace, source: str) -> None:
    typed: list[object] = []
    for value in BENIGN:
        try:
            typed.append(json.loads(value))  # 0.1, 10, -0.1, true: YAML numbers and booleans
        except ValueError:
            typed.append(value)
    contexts = {k: v for k, v in CONTEXTS.items() if k != "heredoc"}  # EOF would end it
    ws.recipe(recipe(typed if source == "recipe" else [1] * len(BENIGN), contexts))
    overrides = [
        f"x{i}={hydra_quoted(value) if '=' in value else value}" for i, value in enumerate(BENIGN)
    ]
    done = ws.cli("run", "-q", *(overrides if source == "override" else []))
    assert done.returncode == 0, done.stderr
    for i, value in enumerate(BENIGN):
        for name in contexts:
            assert ws.read(f"{name}_{i}.txt") == f"{value}\n", (name, value)


def test_a_value_that_would_end_a_here_document_is_refused(ws: Workspace) -> None:
    contexts = {"heredoc": CONTEXTS["heredoc"], "heredoc_tabs": CONTEXTS["heredoc_tabs"]}
    done = ws.recipe(recipe(["EOF", "END"], contexts)).cli("run")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "mlbuild: ml.yaml:5:20: "
        + message("heredoc_0", "EOF", "it would end the here-document <<EOF early")
    )
    assert refusals(done.stderr) == [
        message("heredoc_0", "EOF", "it would end the here-document <<EOF early"),
        message("heredoc_tabs_1", "END", "it would end the here-document <<END early", "x1"),
    ]


def test_a_here_document_delimiter_cannot_come_from_a_param(ws: Workspace) -> None:
    done = ws.recipe(recipe(["END"], {"doc": "cat <<${params.x}\nhello\nEND"})).cli("run")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "mlbuild: ml.yaml:5:16: "
        + message("doc_0", "END", "a here-document's delimiter cannot come from a param")
    )


def test_a_list_cmd_and_the_params_file_take_any_value_as_it_is(ws: Workspace) -> None:
    code = (
        "import sys, mlbuild; "
        "open(sys.argv[1] + '.arg', 'w').write(sys.argv[2]); "
        "open(sys.argv[1] + '.file', 'w').write(mlbuild.params()[sys.argv[1]])"
    )
    values = [v for v in HOSTILE if v]
    params = ", ".join(f"x{i}: {json.dumps(v)}" for i, v in enumerate(values))
    steps = "".join(
        f"  s{i}: {{cmd: [python, -c, {json.dumps(code)}, x{i}, '${{params.x{i}}}'], "
        f"params: [x{i}], outs: [x{i}.arg, x{i}.file]}}\n"
        for i in range(len(values))
    )
    ws.recipe(f"schema_version: 1\nname: demo\nparams: {{{params}}}\nsteps:\n{steps}")
    done = ws.cli("run", "-q")
    assert done.returncode == 0, done.stderr
    for i, value in enumerate(values):
        assert (ws.root / f"x{i}.arg").read_text(encoding="utf-8") == value
        assert (ws.root / f"x{i}.file").read_text(encoding="utf-8") == value
    assert not (ws.root / "pwned").exists()
