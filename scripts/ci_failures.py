# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Why the failed molecule scenarios failed, in a few lines, for the end of .ci/run's output.

CI shows only the tail of a run, and a scenario's log is thousands of lines. For each scenario named
on the command line: the failed tests of its verifier (tests/output/molecule/<name>.junit.xml,
written by pytest through PYTEST_ADDOPTS, set by scripts/molecule.sh) with their messages on one
line each (clipped to WIDTH), or, when no test failed (the scenario failed before or after verify), the last Ansible
failures and molecule errors of its log. Prints nothing for a scenario that left neither.
"""
from __future__ import annotations

import pathlib
import re
import sys
import xml.etree.ElementTree as ET

LOGS = pathlib.Path("tests/output/molecule")
WIDTH = 1500  # characters per line (a CI tail counts lines): an assertion's message, values included
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ANSIBLE_FAILURE = re.compile(r"fatal: \[|FAILED! =>|ERROR!|CRITICAL|Failed to|failed=[1-9]")


def clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= WIDTH else text[: WIDTH - 3] + "..."


def report_message(problem: ET.Element) -> str:
    """The whole message of a failure: the "E " lines of pytest's report, else the message attribute."""
    report = [line[1:].strip() for line in (problem.text or "").splitlines() if line.startswith("E ")]
    return " ".join(report) if report else problem.get("message", "")


def failed_tests(junit: pathlib.Path, most: int = 4) -> list[str]:
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return []
    lines = []
    for case in root.iter("testcase"):
        for problem in list(case.findall("failure")) + list(case.findall("error")):
            # pytest's message: the exception with the assertion's message and values (a
            # LongClient's sessions and where it was stuck, for instance). The message attribute
            # holds only its first line ("[+N more lines...]"): the report's "E " lines hold it all.
            lines.append(clip(f"{case.get('name')}: {report_message(problem)}"))
    if len(lines) > most:
        lines = lines[:most] + [f"... and {len(lines) - most} more failed test(s)"]
    return lines


def ansible_failures(log: pathlib.Path, most: int = 4) -> list[str]:
    try:
        text = ANSI.sub("", log.read_text(errors="replace"))
    except OSError:
        return []
    return [clip(line) for line in text.splitlines() if ANSIBLE_FAILURE.search(line)][-most:]


def main(names: list[str]) -> int:
    for name in names:
        lines = failed_tests(LOGS / f"{name}.junit.xml") or ansible_failures(LOGS / f"{name}.log")
        if lines:
            print(f"ci: why molecule/{name} failed (whole log: {LOGS}/{name}.log):")
            for line in lines:
                print(f"ci:   {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
