"""Every test checked against the model's signature, its files and the recorded metrics before
any test runs, so that a typo costs seconds, not a test run — and is reported with the rest.

What is checked (each problem located at ``ml.yaml:line:col`` or ``file:line``):

* a test file reads as a table, has rows, holds every input column (or, for a model whose input
  is a matrix, the input's key in each JSON line) and each input cell fits its datatype;
* a cases file's columns are inputs, outputs, ``OUTPUT>=``/``OUTPUT<=`` ranges or its
  ``name_column``, and each expected value fits the output's datatype;
* a perturbation names an input and fits its datatype; the outputs a test names exist and, where
  it compares or averages, are numbers;
* a slice's ``by`` and ``label`` columns are in the file, and each label fits the output;
* a metric test's metric is recorded by exactly one step, and is a number.

Nothing here needs numpy or the model's code: only the signature (JSON) and the files.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlbuild.errors import Problem
from mlbuild.graph import Graph
from mlbuild.params import suggest
from mlbuild.testing.spec import CompiledTest
from mlbuild.testing.steps import STEP_SEPARATOR
from mlbuild.testing.tables import Table, TableError
from mlbuild.testing.values import expected_words, is_numeric, parse_value

RANGE_SUFFIXES = (">=", "<=")


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]

    @property
    def is_column(self) -> bool:
        """One value per row (``[-1]``), so a file cell can hold it."""
        return len(self.shape) == 1


def tensors(signature: dict[str, Any], side: str) -> dict[str, Tensor]:
    return {t["name"]: Tensor(t["name"], t["datatype"], tuple(t["shape"])) for t in signature[side]}


class Preflight:
    """Collects the problems of the tests it is given; :attr:`problems` holds them all."""

    def __init__(self, graph: Graph, table: Callable[[str], Table]) -> None:
        self.graph = graph
        self.read = table
        self.problems: list[Problem] = []

    def check_metric(self, test: CompiledTest, recorded: dict[str, dict[str, Any]]) -> None:
        """A metric test's metric against what its steps recorded (all of them up to date)."""
        key = test.metric_key
        assert key is not None
        holders = [s for s in test.metric_steps if key in recorded.get(s, {})]
        at = f"tests.{test.name}.metric"
        if not holders:
            known = sorted({k for s in test.metric_steps for k in recorded.get(s, {})})
            listing = "; ".join(
                f"{s}: {', '.join(sorted(recorded.get(s, {}))) or 'nothing'}"
                for s in test.metric_steps
            )
            self._recipe(
                at,
                f"no step records metric '{key}'{suggest(key, known)}; recorded: "
                f"{listing or 'nothing'}",
            )
            return
        if len(holders) > 1:
            self._recipe(
                at,
                f"'{key}' is recorded by {' and '.join(holders)}; say which one: "
                + " or ".join(f"'{s}{STEP_SEPARATOR}{key}'" for s in holders),
            )
            return
        value = recorded[holders[0]][key]
        if not _is_number(value):
            self._recipe(
                at,
                f"metric '{key}' recorded by step '{holders[0]}' is {value!r}, not a number; "
                "bounds and baselines compare numbers",
            )

    def check(self, test: CompiledTest, signature: dict[str, Any], *, with_file: bool) -> None:
        """A test that runs the model, against its ``signature``; its file too if
        ``with_file`` (a file a step makes is checked once the step is up to date)."""
        inputs, outputs = tensors(signature, "inputs"), tensors(signature, "outputs")
        config = test.config
        here = f"tests.{test.name}"
        if test.kind in ("invariance", "directional"):
            self._perturbations(test, inputs)
        if test.kind == "invariance" and config.get("outputs"):
            for index, name in enumerate(config["outputs"]):
                self._output(f"{here}.outputs[{index}]", name, outputs)
        if test.kind == "directional":
            self._output(f"{here}.output", config["output"], outputs, numeric=True)
        if test.kind == "cases" and isinstance(config.get("tolerance"), dict):
            for name in config["tolerance"]:
                self._output(f"{here}.tolerance.{name}", name, outputs, numeric=True)
        output = None
        if test.kind == "slices":
            output = self._slice_output(test, outputs)
        path = test.table
        if path is None or not with_file:
            return
        try:
            table = self.read(path)
        except TableError as exc:
            self._file(test, exc.path, exc.line, exc.detail)
            return
        if not table.rows:
            self._file(test, path, None, "has no rows; add at least one")
            return
        self._inputs(test, table, inputs)
        if test.kind == "cases":
            self._cases(test, table, inputs, outputs)
        if test.kind == "slices":
            self._slices(test, table, output)

    # the parts ---------------------------------------------------------------------------------

    def _inputs(self, test: CompiledTest, table: Table, inputs: dict[str, Tensor]) -> None:
        columnar = all(t.is_column for t in inputs.values())
        if not columnar and table.is_csv:
            names = ", ".join(f"{t.name} {list(t.shape)}" for t in inputs.values())
            self._file(
                test,
                table.path,
                None,
                f"the model's input is a matrix ({names}), which a CSV row cannot hold; use a "
                '.jsonl file with the input as a list per line: {"'
                + next(iter(inputs))
                + '": [...], ...}',
            )
            return
        missing = [n for n in inputs if n not in table.columns]
        if missing:
            unknown = [c for c in table.columns if c not in inputs]
            close = difflib.get_close_matches(missing[0], unknown, n=1, cutoff=0.6)
            hints = f" (the file has '{close[0]}')" if close else ""
            self._file(
                test,
                table.path,
                1,
                f"missing column{'s' if len(missing) > 1 else ''} "
                + ", ".join(f"'{m}'" for m in missing)
                + f"{hints}; the model's inputs are: {', '.join(inputs)}",
            )
            return
        if not columnar:
            return  # a matrix row is checked by the server's own decoding when it runs
        for name, tensor in inputs.items():
            self._cells(test, table, name, tensor.datatype, f"column '{name}'", allow_empty=False)

    def _cases(
        self,
        test: CompiledTest,
        table: Table,
        inputs: dict[str, Tensor],
        outputs: dict[str, Tensor],
    ) -> None:
        name_column = test.config.get("name_column")
        if name_column is not None and name_column not in table.columns:
            self._recipe(
                f"tests.{test.name}.name_column",
                f"column '{name_column}' is not in {table.path}"
                f"{suggest(name_column, table.columns)}; its columns: {', '.join(table.columns)}",
            )
        expected = 0
        for column in table.columns:
            if column in inputs or column == name_column:
                continue
            output, bound = _expectation(column)
            tensor = outputs.get(output)
            if tensor is None:
                known = [*inputs, *outputs]
                self._file(
                    test,
                    table.path,
                    table.column_line(column),
                    f"column '{column}' is neither an input nor an output of the model"
                    f"{suggest(output, known)}; inputs: {', '.join(inputs)}; outputs: "
                    f"{', '.join(outputs)} (a range is OUTPUT>= and OUTPUT<=)",
                )
                continue
            if not tensor.is_column:
                self._file(
                    test,
                    table.path,
                    table.column_line(column),
                    f"output '{output}' has shape {list(tensor.shape)}, more than one value "
                    "per row; a case compares one value per row",
                )
                continue
            if bound and not is_numeric(tensor.datatype):
                self._file(
                    test,
                    table.path,
                    table.column_line(column),
                    f"column '{column}' is a range, but output '{output}' is "
                    f"{tensor.datatype}; a range needs a numeric output",
                )
                continue
            expected += 1
            self._cells(test, table, column, tensor.datatype, f"column '{column}'")
        if expected == 0:
            self._file(
                test,
                table.path,
                1,
                "has no expected output; add a column named like an output ("
                + ", ".join(outputs)
                + "), or OUTPUT>= / OUTPUT<= for a range",
            )

    def _slices(self, test: CompiledTest, table: Table, output: Tensor | None) -> None:
        config = test.config
        here = f"tests.{test.name}"
        for key in ("by", "label"):
            column = config.get(key)
            if column is not None and column not in table.columns:
                self._recipe(
                    f"{here}.{key}",
                    f"column '{column}' is not in {table.path}{suggest(column, table.columns)}; "
                    f"its columns: {', '.join(table.columns)}",
                )
        label = config.get("label")
        if output is not None and label is not None and label in table.columns:
            self._cells(
                test, table, label, output.datatype, f"label column '{label}'", allow_empty=False
            )

    def _slice_output(self, test: CompiledTest, outputs: dict[str, Tensor]) -> Tensor | None:
        config = test.config
        here = f"tests.{test.name}"
        numeric = config["metric"] != "accuracy"
        if config.get("output") is not None:
            return self._output(f"{here}.output", config["output"], outputs, numeric=numeric)
        if len(outputs) != 1:
            self._recipe(
                f"{here}.metric",
                f"the model has {len(outputs)} outputs ({', '.join(outputs)}); say which one "
                "the metric is computed on with output:",
            )
            return None
        only = next(iter(outputs))
        return self._output(f"{here}.metric", only, outputs, numeric=numeric)

    def _perturbations(self, test: CompiledTest, inputs: dict[str, Tensor]) -> None:
        for name, change in test.config["perturb"].items():
            at = f"tests.{test.name}.perturb.{name}"
            tensor = inputs.get(name)
            if tensor is None:
                self._recipe(
                    at,
                    f"the model has no input '{name}'{suggest(name, list(inputs))}; its inputs: "
                    f"{', '.join(inputs)}",
                )
                continue
            how, value = next((k, v) for k, v in change.items() if v is not None)
            if how == "set":
                try:
                    parse_value(value, tensor.datatype, from_text=False)
                except ValueError as exc:
                    self._recipe(f"{at}.set", f"input '{name}': {exc}")
                continue
            if not is_numeric(tensor.datatype):
                self._recipe(
                    f"{at}.{how}",
                    f"input '{name}' is {tensor.datatype}: '{how}' needs a numeric input; use set",
                )
            elif not tensor.datatype.startswith("FP") and float(value) != int(value):
                self._recipe(
                    f"{at}.{how}",
                    f"{how} {value} would give input '{name}' ({tensor.datatype}) values that "
                    "are not whole numbers; use a whole number",
                )

    def _output(
        self, at: str, name: str, outputs: dict[str, Tensor], *, numeric: bool = False
    ) -> Tensor | None:
        tensor = outputs.get(name)
        if tensor is None:
            self._recipe(
                at,
                f"the model has no output '{name}'{suggest(name, list(outputs))}; its outputs: "
                f"{', '.join(outputs)}",
            )
            return None
        if numeric and not (is_numeric(tensor.datatype) or tensor.datatype == "BOOL"):
            self._recipe(at, f"output '{name}' is {tensor.datatype}; this needs a numeric output")
            return None
        if not tensor.is_column:
            self._recipe(
                at,
                f"output '{name}' has shape {list(tensor.shape)}; this needs one value per row",
            )
            return None
        return tensor

    def _cells(
        self,
        test: CompiledTest,
        table: Table,
        column: str,
        datatype: str,
        what: str,
        *,
        allow_empty: bool = True,
    ) -> None:
        """The first cell of ``column`` that does not fit ``datatype``, located."""
        for index, row in enumerate(table.rows):
            raw = row.get(column)
            try:
                value = parse_value(raw, datatype, from_text=table.is_csv)
            except ValueError as exc:
                self._file(test, table.path, table.lines[index], f"{what}: {exc}")
                return
            if value is None and not allow_empty:
                self._file(
                    test,
                    table.path,
                    table.lines[index],
                    f"{what} is empty; expected {expected_words(datatype)}",
                )
                return

    def _recipe(self, key: str, message: str) -> None:
        self.problems.append(self.graph.problem(key, message))

    def _file(self, test: CompiledTest, path: str, line: int | None, message: str) -> None:
        self.problems.append(Problem(path, line, None, f"tests.{test.name}", message))


def _expectation(column: str) -> tuple[str, bool]:
    """``score>=`` → (``score``, True): the output a cases column is about, and whether it is a
    bound of a range."""
    for suffix in RANGE_SUFFIXES:
        if column.endswith(suffix):
            return column[: -len(suffix)].rstrip(), True
    return column, False


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)
