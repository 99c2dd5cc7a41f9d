"""The JUnit XML report of ``mlbuild test``, as GitLab's test report widget reads it.

GitLab reads ``testsuites/testsuite/testcase``: a case's ``classname`` is shown as its suite and
``name`` as its name (the pair must be unique, or later cases are dropped), ``time`` in seconds,
and a ``failure``, ``error`` or ``skipped`` child's text as the details. So each declared test is
one case (``classname="mlbuild.KIND"``), and each case of a pytest folder is a case of its own.
A test that did not run because a step it needs failed is an ``error`` saying so.
"""

from __future__ import annotations

import re
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from mlbuild import atomic
from mlbuild.testing.runner import NotRun, TestResult

__all__ = ["NotRun", "junit_xml", "write_junit"]


def junit_xml(
    suite: str,
    results: list[TestResult],
    not_run: list[NotRun],
    properties: dict[str, str],
    recipe: str,
) -> bytes:
    """The report of one ``mlbuild test`` run."""
    cases: list[ET.Element] = []
    for result in results:
        cases.append(_declared(result, recipe))
        if result.verdict is not None:
            cases += [_pytest_case(result, c) for c in result.verdict.cases]
    for missing in not_run:
        case = _case(f"mlbuild.{missing.test.kind}", missing.test.name, 0.0, recipe)
        ET.SubElement(case, "error", message=missing.reason, type="not run").text = missing.reason
        cases.append(case)
    counts = {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c.find("failure") is not None),
        "errors": sum(1 for c in cases if c.find("error") is not None),
        "skipped": sum(1 for c in cases if c.find("skipped") is not None),
    }
    seconds = sum(float(c.get("time", "0")) for c in cases)
    root = ET.Element("testsuites", name="mlbuild", time=_seconds(seconds))
    root.attrib.update({k: str(v) for k, v in counts.items()})
    node = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=_host(),
        time=_seconds(seconds),
    )
    node.attrib.update({k: str(v) for k, v in counts.items()})
    props = ET.SubElement(node, "properties")
    for key, value in properties.items():
        ET.SubElement(props, "property", name=key, value=value)
    node.extend(cases)
    _clean(root)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def write_junit(path: Path, data: bytes) -> None:
    atomic.write_bytes(path, data, sync=False)


def _declared(result: TestResult, recipe: str) -> ET.Element:
    test = result.test
    case = _case(f"mlbuild.{test.kind}", test.name, result.duration, recipe)
    verdict = result.verdict
    if result.status == "error":
        ET.SubElement(case, "error", message=_line(result.error), type="error").text = result.error
    elif verdict is not None and not verdict.passed:
        failure = ET.SubElement(case, "failure", message=_line(verdict.summary), type=test.kind)
        failure.text = "\n".join([verdict.summary, *verdict.details])
    out = [verdict.summary] if verdict is not None and verdict.passed else []
    if result.cached:
        out.append(f"verdict from the cache (fingerprint {result.fingerprint})")
    elif result.reasons:
        out.append(f"why it ran: {'; '.join(result.reasons)}")
    if out:
        ET.SubElement(case, "system-out").text = "\n".join(out)
    return case


def _pytest_case(result: TestResult, found: object) -> ET.Element:
    from mlbuild.testing.verdict import CaseResult

    assert isinstance(found, CaseResult)
    case = _case(found.classname or result.test.name, found.name, found.time, result.test.files[0])
    if found.status in ("failed", "error"):
        tag = "failure" if found.status == "failed" else "error"
        ET.SubElement(case, tag, message=_line(found.message), type=tag).text = found.message
    elif found.status == "skipped":
        ET.SubElement(case, "skipped", message=_line(found.message)).text = found.message
    return case


def _case(classname: str, name: str, seconds: float, file: str) -> ET.Element:
    return ET.Element("testcase", classname=classname, name=name, file=file, time=_seconds(seconds))


# XML 1.0 cannot hold these at all, not even escaped: a test's output with a colour code
# (ESC) or a NUL would make the whole report unreadable
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(root: ET.Element) -> None:
    """Every text and attribute of the report made representable in XML 1.0."""
    for element in root.iter():
        if element.text:
            element.text = _printable(element.text)
        for key, value in element.attrib.items():
            element.attrib[key] = _printable(value)


def _printable(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= 500 else first[:497] + "..."


def _host() -> str:
    try:
        return socket.gethostname() or "localhost"
    except OSError:
        return "localhost"
