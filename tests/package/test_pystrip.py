"""The image's source stripper (mlbuild/package/pystrip.py): docstrings and comments out, the code
``python -OO`` runs unchanged, on real packages and hostile sources."""

from __future__ import annotations

import marshal
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlbuild.package.pystrip import strip, strip_tree


def oo_code(data: bytes) -> bytes:
    return marshal.dumps(compile(data, "m.py", "exec", optimize=2, dont_inherit=True))


def run_oo(site: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(site), "PYTHONOPTIMIZE": "2"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_real_package_loses_its_docstrings_and_comments_and_runs_the_same(
    tmp_path: Path,
) -> None:
    import joblib

    site = tmp_path / "site"
    shutil.copytree(Path(joblib.__file__).parent, site / "joblib")
    before = {p: p.read_bytes() for p in site.rglob("*.py")}
    count, saved = strip_tree(str(site))
    assert count > 50 and saved > sum(map(len, before.values())) // 4
    for path, data in before.items():
        after = path.read_bytes()
        assert oo_code(after) == oo_code(data), path  # what -OO runs: the same bytes
        assert after.count(b"\n") == data.count(b"\n"), path  # same lines for tracebacks
    probe = (
        "import joblib, hashlib;"
        "print(joblib.hash({'a': [1, 2, 3]}), joblib.Parallel(n_jobs=1)("
        "joblib.delayed(abs)(-i) for i in range(3)))"
    )
    stripped = run_oo(site, probe)
    shutil.rmtree(site / "joblib")
    shutil.copytree(Path(joblib.__file__).parent, site / "joblib")
    original = run_oo(site, probe)
    assert stripped.returncode == 0, stripped.stderr
    assert stripped.stdout == original.stdout != ""


SAMPLES = {
    "module, class and function docstrings": (
        b'"""Module."""\n\nclass A:\n    """A class,\n    on two lines."""\n\n'
        b"    def f(self):\n        '''One line.'''\n        return 1  # the answer\n"
    ),
    "a docstring followed by code on its line": b'def f():\n    """doc"""; return 2\n',
    "a docstring ended mid-line": b'def f():\n    """two\n    lines"""; return 3\n',
    "implicit concatenation": b'def f():\n    ("a"\n     "b")\n    return 4\n',
    "a string that is not a docstring": b'x = 1\n"not a docstring"\nprint(x)\n',
    "a hash inside strings": b's = "# not a comment"  # a comment\nt = f"{s!r} # {1}"\n',
    "a comment after a continuation": b"x = (1 +  # one\n     2)\n",
    "a coding declaration": b"# -*- coding: utf-8 -*-\n'''doc'''\nx = '\xc3\xa9'  # e\n",
    "non-ASCII docstring": 'def f():\n    """\u00e9t\u00e9 \u2014 summer"""\n    return 5\n'.encode(
        "utf-8"
    ),
    "a docstring with a quote and escapes": b'def f():\n    r"""a \\" b\n    c"""\n',
    "tabs": b"if True:\n\t# tab\n\tx = 1  # one\n",
}


@pytest.mark.parametrize("name", SAMPLES)
def test_what_oo_compiles_is_unchanged_for_every_sample(name: str) -> None:
    data = SAMPLES[name]
    smaller = strip(data)
    if smaller is None:
        return  # left alone: always safe
    assert len(smaller) < len(data)
    assert oo_code(smaller) == oo_code(data)
    assert smaller.count(b"\n") == data.count(b"\n")


def test_the_docstrings_and_comments_are_what_goes() -> None:
    smaller = strip(SAMPLES["module, class and function docstrings"])
    assert smaller is not None
    assert b"Module" not in smaller and b"two lines" not in smaller and b"answer" not in smaller
    assert smaller.splitlines()[8] == b"        return 1"


def test_a_coding_declaration_is_kept() -> None:
    smaller = strip(SAMPLES["a coding declaration"])
    assert smaller is not None and smaller.startswith(b"# -*- coding: utf-8 -*-\n")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"x = 1\n",  # nothing to cut
        b"def f(:\n    '''doc'''\n",  # not Python
        b"# -*- coding: latin-1 -*-\n'''caf\xe9'''\nx = 1\n",  # not UTF-8
        b"\xff\xfe\x00garbage",
        b"def f():\n    '''doc'''\n  return 1\n",  # bad indentation
    ],
)
def test_what_cannot_be_proved_the_same_is_left_alone(data: bytes) -> None:
    assert strip(data) is None


def test_symlinks_and_other_files_are_not_touched(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    outside = tmp_path / "outside.py"
    outside.write_bytes(b'"""doc"""\nx = 1\n')
    (site / "link.py").symlink_to(outside)
    (site / "notes.txt").write_bytes(b'"""doc"""\n')
    (site / "mod.py").write_bytes(b'"""doc"""\nx = 1  # one\n')
    assert strip_tree(str(site)) == (1, len(b"  # one"))
    assert outside.read_bytes() == b'"""doc"""\nx = 1\n'
    assert (site / "notes.txt").read_bytes() == b'"""doc"""\n'
    # a one-line docstring keeps its width (where its statement ends is in the code's positions)
    assert (site / "mod.py").read_bytes() == b'"       "\nx = 1\n'


def test_a_rewrite_that_would_change_the_code_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlbuild.package import pystrip

    # the proof is the compiler's, not the rewriter's: a rewriter that got it wrong is caught
    monkeypatch.setattr(pystrip, "_strip", lambda data: b"x = 2\n")
    assert strip(b"x = 1  # one\n") is None
    monkeypatch.setattr(pystrip, "_strip", lambda data: b"x = 1\n")
    assert strip(b"x = 1  # one\n") == b"x = 1\n"
