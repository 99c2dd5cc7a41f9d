"""Drop the docstrings and comments from the Python sources of an image's packages, and keep a file
changed only where ``python -OO`` compiles it to exactly the same code, with the standard library
only (it runs in the image's build stages, like :mod:`mlbuild.package.elfstrip`).

The image runs its interpreter with ``PYTHONOPTIMIZE=2`` (``-OO``): docstrings are then never
compiled, so their text is dead weight (half the sources of numpy, scipy and scikit-learn). Each
docstring is replaced by an empty string literal that keeps its lines and the column where it
ended, each comment is cut (a ``coding:`` declaration on the first two lines is kept), and the
result is compiled with ``optimize=2`` beside the original: a file is rewritten only when the two
code objects marshal to the same bytes (same instructions, constants, names, and line and column
tables, so tracebacks point at the same lines). Anything else (a file that does not parse, is not
UTF-8, or compiles differently) is left as it is.
"""

from __future__ import annotations

import ast
import io
import marshal
import os
import re
import sys
import tokenize

_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=]")
_DEFINITIONS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def strip(data: bytes, filename: str = "<source>") -> bytes | None:
    """``data`` without docstrings and comments, or None to leave it unchanged (nothing to cut,
    not valid UTF-8 Python, or not compiled by ``-OO`` to the very same code)."""
    try:
        smaller = _strip(data)
        if smaller is None or len(smaller) >= len(data):
            return None
        same = _compiled(smaller, filename) == _compiled(data, filename)
    except (SyntaxError, ValueError, UnicodeDecodeError, tokenize.TokenError, IndentationError):
        return None
    return smaller if same else None


def _compiled(data: bytes, filename: str) -> bytes:
    return marshal.dumps(compile(data, filename, "exec", optimize=2, dont_inherit=True))


def _strip(data: bytes) -> bytes | None:
    data.decode("utf-8")  # a file in another encoding is left alone
    lines = data.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    cuts: list[tuple[int, int, bytes]] = []
    for node in ast.walk(ast.parse(data)):
        if not isinstance(node, _DEFINITIONS) or not node.body:
            continue
        first = node.body[0]
        if not (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            continue
        doc = first.value
        if doc.end_lineno is None or doc.end_col_offset is None:
            continue
        start = starts[doc.lineno - 1] + doc.col_offset
        end = starts[doc.end_lineno - 1] + doc.end_col_offset
        newlines = doc.end_lineno - doc.lineno
        # an empty literal ending on the same line and column (byte offsets, as the compiler's
        # position table counts them): -OO drops it just the same
        if newlines:
            empty = b'"""' + b"\n" * newlines + b" " * (doc.end_col_offset - 3) + b'"""'
        else:
            empty = b'"' + b" " * (end - start - 2) + b'"'
        cuts.append((start, end, empty))
    for token in tokenize.tokenize(io.BytesIO(data).readline):
        if token.type != tokenize.COMMENT:
            continue
        row, column = token.start
        line = lines[row - 1]
        if row <= 2 and _CODING.match(line):
            continue
        start = starts[row - 1] + len(line.decode("utf-8")[:column].encode("utf-8"))
        cuts.append((start, starts[row - 1] + len(line.rstrip(b"\r\n")), b""))
    if not cuts:
        return None
    out = bytearray()
    at = 0
    for start, end, replacement in sorted(cuts):
        if start < at:
            continue
        out += data[at:start].rstrip(b" \t") if not replacement else data[at:start]
        out += replacement
        at = end
    out += data[at:]
    return bytes(out)


def strip_tree(root: str) -> tuple[int, int]:
    """Strip every ``.py`` file under ``root`` in place; (files rewritten, bytes saved)."""
    count = saved = 0
    for folder, _, names in os.walk(root):
        for file in names:
            path = os.path.join(folder, file)
            if not file.endswith(".py") or os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as handle:
                data = handle.read()
            smaller = strip(data, path)
            if smaller is None:
                continue
            tmp = f"{path}.strip-tmp"
            with open(tmp, "wb") as handle:
                handle.write(smaller)
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
            os.replace(tmp, path)
            count += 1
            saved += len(data) - len(smaller)
    return count, saved


if __name__ == "__main__":
    for tree in sys.argv[1:]:
        files, freed = strip_tree(tree)
        print(f"pystrip: {tree}: {files} sources, {freed / 1e6:.1f} MB of docstrings and comments")
