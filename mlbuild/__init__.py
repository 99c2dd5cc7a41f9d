"""mlbuild: one committed recipe, ``ml.yaml``, turned into reproducible, cached ML steps.

This module stays import-light: step code calls :func:`params` at run time.
"""

from __future__ import annotations

# The function shadows the subpackage as an attribute of ``mlbuild`` (the issue asks for
# ``mlbuild.params()``); import from the subpackage with ``from mlbuild.params import ...``.
from mlbuild.params.runtime import params

__version__ = "0.1.0"
__all__ = ["__version__", "params"]
