"""Test files as tables: a CSV file with a header row, or JSON Lines with one object per line.

The formats are those of ``mlbuild predict``. A CSV cell stays text (parsed later by the
datatype of the column's input or output); a JSON Lines value is already typed. Every row keeps its
line number, so each problem found later names ``file:line``. A file that is too big, not UTF-8,
empty, ragged or not JSON is refused here with its line.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbuild.errors import MlbuildError

TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson")
MAX_BYTES = 256 << 20  # a test file is a handful of golden rows or a held-out split, not a lake
MAX_ROWS = 1_000_000


class TableError(MlbuildError):
    """A test file cannot be read as a table; ``line`` is where (None: the file as a whole)."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        super().__init__(f"{path}{f':{line}' if line else ''}: {message}")
        self.path = path
        self.line = line
        self.detail = message


@dataclass(frozen=True)
class Table:
    """Rows of a test file: ``rows[i]`` maps column → cell, read at line ``lines[i]``."""

    path: str
    columns: list[str]
    rows: list[dict[str, Any]]
    lines: list[int]
    is_csv: bool

    def column_line(self, column: str) -> int:
        """The line where ``column`` first appears: the header of a CSV file."""
        if self.is_csv:
            return 1
        for row, line in zip(self.rows, self.lines, strict=True):
            if column in row:
                return line
        return 1

    def where(self, index: int) -> str:
        """``tests/golden.csv:4``: where row ``index`` is."""
        return f"{self.path}:{self.lines[index]}"


def read_table(root: Path, path: str) -> Table:
    """The table in ``root / path`` (a normalised, fence-checked path)."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise TableError(path, None, "expected a .csv or .jsonl file")
    full = root / path
    try:
        with full.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise TableError(path, None, "does not exist") from None
    except IsADirectoryError:
        raise TableError(path, None, "is a directory; name a .csv or .jsonl file") from None
    except OSError as exc:
        raise TableError(path, None, f"cannot be read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise TableError(path, None, f"is larger than {MAX_BYTES >> 20} MiB, too big for a test")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TableError(
            path,
            line,
            f"not UTF-8 (byte 0x{data[exc.start]:02x} cannot start a character); save it as UTF-8",
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark, as spreadsheets write
    if suffix == ".csv":
        return _csv(path, text)
    return _jsonl(path, text)


def _csv(path: str, text: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise TableError(path, None, "is empty; expected a header row and data rows")
        columns = [name.strip() for name in header]
        for index, name in enumerate(columns):
            if not name:
                raise TableError(path, 1, f"column {index + 1} of the header has no name")
            if name in columns[:index]:
                raise TableError(path, 1, f"column '{name}' appears twice in the header")
        rows: list[dict[str, Any]] = []
        lines: list[int] = []
        for row in reader:
            if not row or row == [""]:
                continue  # blank lines carry no row
            if len(row) != len(columns):
                raise TableError(
                    path,
                    reader.line_num,
                    f"expected {len(columns)} cells (as the header has), got {len(row)}",
                )
            _count(path, rows, reader.line_num)
            rows.append(dict(zip(columns, row, strict=True)))
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise TableError(path, reader.line_num, str(exc)) from None
    return Table(path, columns, rows, lines, is_csv=True)


def _jsonl(path: str, text: str) -> Table:
    columns: dict[str, None] = {}
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_constant=_no_constant)
        except ValueError as exc:
            raise TableError(path, number, f"not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise TableError(path, number, "expected one JSON object ({column: value}) per line")
        _count(path, rows, number)
        columns.update(dict.fromkeys(value))
        rows.append(value)
        lines.append(number)
    if not rows:
        raise TableError(path, None, "is empty; expected one JSON object per line")
    return Table(path, list(columns), rows, lines, is_csv=False)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _count(path: str, rows: list[dict[str, Any]], line: int) -> None:
    if len(rows) >= MAX_ROWS:
        raise TableError(path, line, f"more than {MAX_ROWS} rows, too many for a test")
