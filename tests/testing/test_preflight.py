"""Bad input is found before any test runs — all of it at once, each problem at ``ml.yaml:line:col``
or ``file:line`` — and the command exits 2. A pytest test that marks each of its runs proves
that nothing ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.testing.conftest import mlbuild, toy_recipe

pytestmark = pytest.mark.slow

MARKER = {
    "marker": {"test_mark.py": "def test_mark():\n    open('ran.log', 'a').write('ran\\n')\n"}
}
MARKER_TEST = "marker: {kind: pytest, path: marker}"


def refused(ws: Workspace, *args: str) -> str:
    """Run `mlbuild test`: it must refuse with exit 2 and run no test; its message."""
    done = mlbuild(ws, "test", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert not (ws.root / "ran.log").exists(), "a test ran"
    assert "Traceback" not in done.stderr
    message: str = done.stderr
    return message


def test_a_case_column_the_signature_lacks(toy: Workspace) -> None:
    toy.gen(MARKER).gen({"tests": {"cases.csv": "x,n,colour,scroe\n1.0,0,red,2.0\n"}})
    toy.recipe(toy_recipe(f"golden: {{kind: cases, file: tests/cases.csv}}\n{MARKER_TEST}"))
    assert refused(toy) == (
        "mlbuild: tests/cases.csv:1:1: tests.golden: column 'scroe' is neither an input nor an "
        "output of the model (did you mean 'score'?); inputs: x, n, colour; outputs: score, "
        "label, size (a range is OUTPUT>= and OUTPUT<=)\n"
        "tests/cases.csv:1:1: tests.golden: has no expected output; add a column named like "
        "an output (score, label, size), or OUTPUT>= / OUTPUT<= for a range\n"
        "2 problems in tests/cases.csv; no test ran\n"
    )


def test_a_metric_no_step_records(toy: Workspace) -> None:
    toy.gen(MARKER).recipe(
        toy_recipe(f"accuracy: {{kind: metric, metric: acuracy, min: 0.8}}\n{MARKER_TEST}")
    )
    assert refused(toy) == (
        "mlbuild: ml.yaml:30:36: tests.accuracy.metric: no step records metric 'acuracy' (did "
        "you mean 'accuracy'?); recorded: evaluate: accuracy, loss, model\n"
        "   30 |   accuracy: {kind: metric, metric: acuracy, min: 0.8}\n"
        "      |                                    ^\n"
        "1 problem in ml.yaml; no test ran\n"
    )


def test_a_metric_that_is_not_a_number_and_one_recorded_by_no_step(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: plain
        steps:
          train: {cmd: echo 1 > out.txt, outs: [out.txt]}
        tests:
          accuracy: {kind: metric, metric: accuracy, min: 0.8}
          named: {kind: metric, metric: train/accuracy, min: 0.8}
          ghost: {kind: metric, metric: fit/accuracy, min: 0.8}
        """
    )
    message = refused(ws)
    assert message.splitlines()[0] == (
        "mlbuild: ml.yaml:6:36: tests.accuracy.metric: no step records metrics, so none records "
        "'accuracy'; list the file a step writes its metrics to in that step's metrics:"
    )
    assert (
        "ml.yaml:7:33: tests.named.metric: step 'train' records no metrics (it has no metrics: "
        "files), so it cannot record 'accuracy'; steps that record metrics: none" in message
    )
    assert "ml.yaml:8:33: tests.ghost.metric: no step named 'fit'; steps that record" in message


def test_the_toy_metric_model_is_a_string(toy: Workspace) -> None:
    toy.recipe(toy_recipe("name: {kind: metric, metric: model, min: 1}"))
    assert (
        "tests.name.metric: metric 'model' recorded by step 'evaluate' is 'toy', not a number; "
        "bounds and baselines compare numbers" in refused(toy)
    )


@pytest.mark.parametrize(
    ("cases", "problem"),
    [
        (
            "x,n,colour,label\n1.0,0,red,1\n2.0,0,red,big\n",
            "tests/cases.csv:3:1: tests.golden: column 'label': expected an integer (INT64), "
            "got 'big'",
        ),
        (
            "x,n,colour,label\n1.0,1.5,red,1\n",
            "tests/cases.csv:2:1: tests.golden: column 'n': expected an integer (INT64), got '1.5'",
        ),
        (
            "x,n,colour,score\nabc,0,red,1\n",
            "tests/cases.csv:2:1: tests.golden: column 'x': expected a number (FP64), got 'abc'",
        ),
        (
            "x,n,colour,score\nnan,0,red,1\n",
            "tests/cases.csv:2:1: tests.golden: column 'x': expected a finite number (FP64), got "
            "'nan'",
        ),
        (
            "x,n,colour,size>=\n1.0,0,red,a\n",
            "tests/cases.csv:1:1: tests.golden: column 'size>=' is a range, but output 'size' is "
            "BYTES; a range needs a numeric output",
        ),
        (
            "x,n,colour,label\n1.0,99999999999999999999,red,1\n",
            "tests/cases.csv:2:1: tests.golden: column 'n': 99999999999999999999 is out of range "
            "for INT64 (-9223372036854775808 to 9223372036854775807)",
        ),
        (
            "x,colour,label\n1.0,red,1\n",
            "tests/cases.csv:1:1: tests.golden: missing column 'n'; the model's inputs are: x, n, "
            "colour",
        ),
        ("x,n,colour,label\n", "tests/cases.csv: tests.golden: has no rows; add at least one"),
        ("", "tests/cases.csv: tests.golden: is empty; expected a header row and data rows"),
        (
            "x,n,colour,label\n1.0,0,red\n",
            "tests/cases.csv:2:1: tests.golden: expected 4 cells (as the header has), got 3",
        ),
        (
            "x,n,x,label\n1.0,0,1.0,1\n",
            "tests/cases.csv:1:1: tests.golden: column 'x' appears twice in the header",
        ),
        (
            b"x,n,colour,label\n1.0,0,r\xe9d,1\n",
            "tests/cases.csv:2:1: tests.golden: not UTF-8 (byte 0xe9 cannot start a character); "
            "save it as UTF-8",
        ),
    ],
    ids=[
        "class-for-an-integer",
        "fraction-for-an-integer-input",
        "text-for-a-float-input",
        "nan",
        "range-on-text",
        "integer-overflow",
        "missing-input",
        "header-only",
        "empty",
        "ragged",
        "duplicate-column",
        "not-utf8",
    ],
)
def test_case_files_with_wrong_values_or_shapes(
    toy: Workspace, cases: str | bytes, problem: str
) -> None:
    toy.gen(MARKER).gen({"tests": {"cases.csv": cases}})
    toy.recipe(toy_recipe(f"golden: {{kind: cases, file: tests/cases.csv}}\n{MARKER_TEST}"))
    assert problem in refused(toy)


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            '{"x": 1.0, "n": 0, "colour": "red", "label": 1}\n{"x": 1.0, "n": 0, "colour": "red", '
            '"label": "one"}\n',
            "tests/cases.jsonl:2:1: tests.golden: column 'label': expected an integer (INT64), "
            "got 'one'",
        ),
        (
            '{"x": 1.0, "n": true, "colour": "red", "label": 1}\n',
            "tests/cases.jsonl:1:1: tests.golden: column 'n': expected an integer (INT64), got "
            "true",
        ),
        (
            '{"x": 1.0, "n": 0, "colour": 7, "size": "big"}\n',
            "tests/cases.jsonl:1:1: tests.golden: column 'colour': expected a string (BYTES), "
            "got 7",
        ),
        (
            '{"x": NaN, "n": 0, "colour": "red", "label": 1}\n',
            "tests/cases.jsonl:1:1: tests.golden: not valid JSON: NaN is not JSON",
        ),
        ("[1, 2]\n", "tests/cases.jsonl:1:1: tests.golden: expected one JSON object ({column: "),
    ],
    ids=["class-for-an-integer", "bool-for-an-integer", "number-for-text", "nan", "not-object"],
)
def test_jsonl_case_files_with_wrong_values(toy: Workspace, lines: str, problem: str) -> None:
    toy.gen(MARKER).gen({"tests": {"cases.jsonl": lines}})
    toy.recipe(toy_recipe(f"golden: {{kind: cases, file: tests/cases.jsonl}}\n{MARKER_TEST}"))
    assert problem in refused(toy)


def test_an_unknown_slice_column_and_an_unknown_label(toy: Workspace) -> None:
    toy.gen(MARKER).recipe(
        toy_recipe(
            "regions: {kind: slices, file: tests/cases.csv, by: regoin, label: truht, "
            f"output: label, metric: accuracy, min: 0.5}}\n{MARKER_TEST}"
        )
    )
    message = refused(toy)
    assert message.startswith(
        "mlbuild: ml.yaml:30:54: tests.regions.by: column 'regoin' is not in tests/cases.csv; "
        "its columns: case, x, n, colour, score, label, size\n"
    )
    assert "ml.yaml:30:69: tests.regions.label: column 'truht' is not in tests/cases.csv" in message


def test_behaviour_and_slice_settings_that_do_not_fit_the_model(toy: Workspace) -> None:
    toy.gen(MARKER).recipe(
        toy_recipe(
            f"""
            a: {{kind: invariance, file: tests/cases.csv, perturb: {{y: {{add: 1}}}}}}
            b: {{kind: invariance, file: tests/cases.csv, perturb: {{n: {{add: 0.5}}}}}}
            c: {{kind: invariance, file: tests/cases.csv, perturb: {{colour: {{multiply: 2}}}}}}
            d: {{kind: invariance, file: tests/cases.csv, perturb: {{x: {{set: big}}}}}}
            e: {{kind: invariance, file: tests/cases.csv, perturb: {{x: {{add: 1}}}},
                outputs: [scor]}}
            f: {{kind: directional, file: tests/cases.csv, perturb: {{x: {{add: 1}}}},
                output: size, expect: increase}}
            g: {{kind: slices, file: tests/cases.csv, by: colour, metric: mean, max: 1}}
            h: {{kind: cases, file: tests/cases.csv, name_column: case, tolerance: {{siez: 1}}}}
            i: {{kind: cases, file: tests/cases.csv, name_column: title}}
            {MARKER_TEST}
            """
        )
    )
    message = refused(toy)
    expected = [
        "tests.a.perturb.y: the model has no input 'y'; its inputs: x, n, colour",
        "tests.b.perturb.n.add: add 0.5 would give input 'n' (INT64) values that are not whole "
        "numbers; use a whole number",
        "tests.c.perturb.colour.multiply: input 'colour' is BYTES: 'multiply' needs a numeric "
        "input; use set",
        "tests.d.perturb.x.set: input 'x': expected a number (FP64), got 'big'",
        "tests.e.outputs[0]: the model has no output 'scor' (did you mean 'score'?); its outputs: "
        "score, label, size",
        "tests.f.output: output 'size' is BYTES; this needs a numeric output",
        "tests.g.metric: the model has 3 outputs (score, label, size); say which one the metric "
        "is computed on with output:",
        "tests.h.tolerance.siez: the model has no output 'siez' (did you mean 'size'?)",
        "tests.i.name_column: column 'title' is not in tests/cases.csv",
        # without its name column, `case` is a column the model does not know
        "tests/cases.csv:1:1: tests.i: column 'case' is neither an input nor an output of the "
        "model",
    ]
    for line in expected:
        assert line in message, line
    assert message.rstrip().endswith("10 problems in ml.yaml, tests/cases.csv; no test ran")


def test_a_matrix_model_takes_its_rows_from_json_lines(ws: Workspace) -> None:
    ws.gen(
        {
            "echo.py": "class Echo:\n    def load(self, a):\n        pass\n\n"
            "    def predict(self, inputs):\n        return {'y': inputs['m'][:, 0]}\n",
            "rows.csv": "a,b,y\n1,2,1\n",
            "rows.jsonl": '{"m": [1.0, 2.0], "y": 1.0}\n',
        }
    ).recipe(
        """\
        schema_version: 1
        name: matrix
        steps:
          config: {cmd: "echo '{}' > c.json", outs: [c.json]}
        model:
          artifacts: {c: c.json}
          class: echo.py:Echo
          signature:
            inputs: [{name: m, datatype: FP64, shape: [-1, 2]}]
            outputs: [{name: y, datatype: FP64, shape: [-1]}]
        tests:
          from-csv: {kind: cases, file: rows.csv}
          from-jsonl: {kind: cases, file: rows.jsonl}
        """
    )
    assert (
        "rows.csv: tests.from-csv: the model's input is a matrix (m [-1, 2]), which a CSV row "
        'cannot hold; use a .jsonl file with the input as a list per line: {"m": [...], ...}'
        in refused(ws)
    )
    ws.recipe(
        (ws.root / "ml.yaml").read_text().replace("  from-csv: {kind: cases, file: rows.csv}\n", "")
    )
    done = mlbuild(ws, "test")
    assert done.returncode == 0, done.stderr
    assert "from-jsonl  cases  passed" in done.stdout


def test_validate_reports_the_tests_problems_with_the_rest(toy: Workspace) -> None:
    toy.recipe(
        toy_recipe(
            """
            golden: {kind: cases, file: tests/gone.csv}
            wrong: {kind: cases, file: tests/cases.txt}
            noise: {kind: invariance, file: tests/cases.csv, perturb: {y: {add: 1}}}
            """
        ).replace("deps: [model.json]", "deps: [model.json, missing.txt]")
    )
    done = mlbuild(toy, "validate")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0].startswith("mlbuild: ml.yaml:")
    for line in [
        "steps.evaluate.deps[1]: 'missing.txt' does not exist and no step makes it",
        # the test's step reports it with every step's inputs, once
        "tests.golden.file: 'tests/gone.csv' does not exist and no step makes it; create the "
        "file or add a step that lists it in outs",
        "tests.wrong.file: 'tests/cases.txt' is not a test table; expected a .csv file with a "
        "header row or a .jsonl file with one object per line",
        # the signature is in the recipe, so the inputs are known before anything is built
        "tests.noise.perturb.y: the model has no input 'y'; its inputs: x, n, colour",
    ]:
        assert line in done.stderr, line
    assert not (toy.root / ".mlbuild" / "serving").exists(), "validate loaded the model"


@pytest.mark.parametrize(
    ("path", "refusal"),
    [
        ("../outside.csv", "is outside the repository"),
        ("/etc/passwd.csv", "is outside the repository"),
        (".git/cases.csv", ".git"),
        (".mlbuild/cases.csv", ".mlbuild"),
        (".", "the repository root"),
        ("link/cases.csv", "resolves through the symlink 'link'"),
    ],
    ids=["parent", "absolute", "git", "mlbuild", "root", "symlink-out"],
)
def test_test_paths_stay_inside_the_repository(
    toy: Workspace, tmp_path: Path, path: str, refusal: str
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "cases.csv").write_text("x,n,colour,score\n1.0,0,red,2.0\n")
    (toy.root / "link").symlink_to(outside)
    toy.recipe(toy_recipe(f"golden: {{kind: cases, file: '{path}'}}"))
    done = mlbuild(toy, "test")
    assert done.returncode == 2
    assert done.stderr.startswith("mlbuild: ml.yaml:30:31: tests.golden.file: ")
    assert "tests.golden.file:" in done.stderr
    assert refusal in done.stderr
