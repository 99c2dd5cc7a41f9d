"""mlbuild: one committed recipe, ``ml.yaml``, turned into reproducible, cached ML steps.

This module stays import-light: step code calls :func:`params` and :func:`report` at run time.
"""

from __future__ import annotations

# The function shadows the subpackage as an attribute of ``mlbuild`` (the issue asks for
# ``mlbuild.params()``); import from the subpackage with ``from mlbuild.params import ...``.
from mlbuild.params.runtime import params

__version__ = "0.1.0"
__all__ = ["__version__", "params", "report"]


def report(value: float, step: int) -> None:
    """Report an intermediate objective ``value`` after ``step`` to the running search trial,
    whose pruner may stop it (see :mod:`mlbuild.reporting`); outside a trial, nothing happens.
    Imported on first use: ``import mlbuild`` stays cheap for every step."""
    from mlbuild.reporting import report as send

    send(value, step)
