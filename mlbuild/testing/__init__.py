"""Model tests as release gates: declared in ``ml.yaml`` under ``tests:``, run by ``mlbuild test``
as cached steps, reported as JUnit XML, and required by ``package``, ``publish`` and ``deploy``.

The kinds (``metric``, ``cases``, ``invariance``, ``directional``, ``slices``, ``latency``,
``serving``, ``pytest``) are in :mod:`mlbuild.testing.kinds`; the pytest fixtures in
:mod:`mlbuild.testing.plugin`. Modules load on first use (PEP 562): the gate and the runner import
the model's libraries only when a test that runs needs the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlbuild._lazy import lazy_getattr

if TYPE_CHECKING:
    from mlbuild.testing.gate import Gate as Gate
    from mlbuild.testing.gate import GateError as GateError
    from mlbuild.testing.gate import check_tests as check_tests
    from mlbuild.testing.gate import require_passing_tests as require_passing_tests
    from mlbuild.testing.junit import NotRun as NotRun
    from mlbuild.testing.junit import junit_xml as junit_xml
    from mlbuild.testing.junit import write_junit as write_junit
    from mlbuild.testing.runner import TestReport as TestReport
    from mlbuild.testing.runner import TestResult as TestResult
    from mlbuild.testing.runner import run_tests as run_tests
    from mlbuild.testing.spec import CompiledTest as CompiledTest
    from mlbuild.testing.spec import compile_tests as compile_tests
    from mlbuild.testing.verdict import Verdict as Verdict

_LAZY = {
    "Gate": "gate",
    "GateError": "gate",
    "check_tests": "gate",
    "require_passing_tests": "gate",
    "NotRun": "junit",
    "junit_xml": "junit",
    "write_junit": "junit",
    "TestReport": "runner",
    "TestResult": "runner",
    "run_tests": "runner",
    "CompiledTest": "spec",
    "compile_tests": "spec",
    "Verdict": "verdict",
}

__getattr__ = lazy_getattr("mlbuild.testing", _LAZY)

__all__ = [
    "CompiledTest",
    "Gate",
    "GateError",
    "NotRun",
    "TestReport",
    "TestResult",
    "Verdict",
    "check_tests",
    "compile_tests",
    "junit_xml",
    "require_passing_tests",
    "run_tests",
    "write_junit",
]
