"""The optional C extension; everything else about the package is in pyproject.toml.

``mlbuild.data._md5x`` hashes up to 8 files at once with AVX2 (DVC's md5 of a dataset's files,
mlbuild/data/md5.py). It is optional: without a C compiler the install goes on and md5.py uses
hashlib. ``pip install -e .`` builds it; ``python setup.py build_ext --inplace`` rebuilds it after
editing the C file.
"""

from __future__ import annotations

import sys

from setuptools import Extension, setup

_ARGS = [] if sys.platform == "win32" else ["-O3", "-std=c11", "-D_GNU_SOURCE"]

setup(
    ext_modules=[
        Extension(
            "mlbuild.data._md5x",
            ["mlbuild/data/_md5x.c"],
            extra_compile_args=_ARGS,
            optional=True,
        )
    ]
)
