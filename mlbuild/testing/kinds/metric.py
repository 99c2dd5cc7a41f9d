"""``kind: metric``: bounds on a metric a step records, and a comparison with a registered
version (``production``) — "no worse than production by more than 0.01"."""

from __future__ import annotations

from typing import Any

from mlbuild.errors import MlbuildError
from mlbuild.testing.session import Session
from mlbuild.testing.spec import CompiledTest
from mlbuild.testing.verdict import Measured, Verdict


def run(test: CompiledTest, session: Session) -> Verdict:
    found = session.metric(test)
    if found is None:  # the pre-flight checks make sure it is there
        raise MlbuildError(f"test '{test.name}': metric '{test.metric_key}' was not recorded")
    key, value = found.key, float(found.value)
    config = test.config
    passed: list[str] = []
    failed: list[str] = []
    low, high = config.get("min"), config.get("max")
    if low is not None:
        (passed if value >= low else failed).append(
            f"{key} {_n(value)} {'>=' if value >= low else 'is below the minimum'} {_n(low)}"
        )
    if high is not None:
        (passed if value <= high else failed).append(
            f"{key} {_n(value)} {'<=' if value <= high else 'is above the maximum'} {_n(high)}"
        )
    measured: Measured = {"value": value}
    baseline = session.baseline(test)
    if baseline is not None:
        settings = config["baseline"]
        where = f"model '{baseline.model}' alias '{baseline.alias}'"
        if baseline.version is None:
            passed.append(f"no version of {where} yet, nothing to compare with")
        elif not _is_number(baseline.value):
            failed.append(
                f"version {baseline.version} ({where}) recorded no number for '{key}' "
                f"({baseline.value!r}), so {key} cannot be compared with it"
            )
        else:
            measured["baseline"] = float(baseline.value)
            measured["baseline_version"] = baseline.version
            line, ok = _against(key, value, float(baseline.value), settings)
            (passed if ok else failed).append(f"{line} (version {baseline.version}, {where})")
    if failed:
        return Verdict(False, "; ".join(failed), passed, measured)
    return Verdict(True, "; ".join(passed), [], measured)


def _against(key: str, value: float, base: float, settings: dict[str, Any]) -> tuple[str, bool]:
    tolerance = float(settings.get("tolerance", 0.0))
    higher = settings.get("better", "higher") == "higher"
    worse_by = (base - value) if higher else (value - base)
    if worse_by <= tolerance + 1e-12:  # a tolerance written in decimal is not exact in binary
        if worse_by > 0:
            return f"{key} {_n(value)} is within {_n(tolerance)} of the baseline {_n(base)}", True
        return f"{key} {_n(value)} is no worse than the baseline {_n(base)}", True
    return (
        f"{key} {_n(value)} is worse than the baseline {_n(base)} by {_n(worse_by)}, more than "
        f"the tolerance {_n(tolerance)}",
        False,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _n(value: float) -> str:
    return f"{value:.6g}"
