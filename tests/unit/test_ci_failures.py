# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/ci_failures.py: the lines that end a failed CI run say which test failed and why."""
from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "ci_failures.py"


def run(cwd: pathlib.Path, *names: str) -> list[str]:
    out = subprocess.run([sys.executable, str(SCRIPT), *names], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


@pytest.fixture
def logs(tmp_path):
    path = tmp_path / "tests" / "output" / "molecule"
    path.mkdir(parents=True)
    return path


def test_a_failed_verifier_test_is_named_with_its_message(tmp_path, logs):
    (tmp_path / "test_scenario.py").write_text(
        "def test_reconnects():\n"
        "    sessions = [['shop-3', 1.0, 2.0, 'closed 1001']] * 40\n"
        "    assert len(sessions) == 2, 'stuck: phase: ws: closing\\nlog: 12.5 < CLOSE 1001 ' + repr(sessions)\n"
        "def test_serves():\n"
        "    pass\n"
    )
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_scenario.py",
                    f"--junitxml={logs / 'sites.junit.xml'}"], cwd=tmp_path, capture_output=True, check=False)
    (logs / "sites.log").write_text("fatal: [sites-nginx]: FAILED! => {}\n")  # the tests come first
    lines = run(tmp_path, "sites")
    assert lines[0] == "ci: why molecule/sites failed (whole log: tests/output/molecule/sites.log):"
    assert len(lines) == 2 and lines[1].startswith("ci:   test_reconnects: AssertionError: ")
    assert "stuck: phase: ws: closing" in lines[1] and "'closed 1001'" in lines[1]
    # The message's later lines too (pytest shortens a long message attribute to its first lines).
    assert "log: 12.5 < CLOSE 1001" in lines[1] and "more line" not in lines[1]


def test_without_failed_tests_the_last_ansible_failures_are_shown(tmp_path, logs):
    log = ["\x1b[32mok: [sites-nginx]\x1b[0m"] + [f'fatal: [sites-nginx]: FAILED! => {{"msg": "task {n}"}}' for n in range(6)]
    (logs / "tls.log").write_text("\n".join(log) + "\n")
    lines = run(tmp_path, "tls", "fleet")  # fleet left no log: nothing said of it
    assert lines[0].startswith("ci: why molecule/tls failed")
    assert [line.rsplit('"task ', 1)[1] for line in lines[1:]] == ['2"}', '3"}', '4"}', '5"}']


def test_long_messages_are_clipped_to_one_line():
    spec = importlib.util.spec_from_file_location("ci_failures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    clipped = module.clip("a\nb " + "x" * 5000)
    assert "\n" not in clipped and len(clipped) == module.WIDTH and clipped.endswith("...")
