# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""examples/awx: survey specs in AWX's format whose variables the collection knows, and the files
that ansible-builder and AWX's project sync read."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
AWX = REPO / "examples" / "awx"
SURVEYS = sorted((AWX / "surveys").glob("*.json"))
# AWX's survey question types and the keys every question has (awx/main/models/mixins.py, SurveyJobTemplateMixin).
TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
QUESTION_KEYS = {"question_name", "question_description", "required", "type", "variable", "default"}


def role_variables() -> dict:
    options = {}
    for spec in REPO.glob("roles/*/meta/argument_specs.yml"):
        options.update(yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"])
    return options


def playbook_variables() -> set:
    """Variables the playbooks read at play level (documented under 'Playbook variables')."""
    text = "".join(p.read_text() for p in (REPO / "playbooks").glob("*.yml"))
    return set(re.findall(r"\{\{ (baton_[a-z_]+) \| default", text))


def test_there_are_surveys_for_deploy_and_rollback():
    assert [p.stem for p in SURVEYS] == ["deploy", "rollback"]


@pytest.mark.parametrize("path", SURVEYS, ids=lambda p: p.stem)
def test_survey_structure(path):
    survey = json.loads(path.read_text())
    assert set(survey) == {"name", "description", "spec"} and survey["name"] and survey["spec"]
    variables = [q["variable"] for q in survey["spec"]]
    assert len(variables) == len(set(variables)), "a variable is asked twice"
    for q in survey["spec"]:
        assert QUESTION_KEYS <= set(q), q
        assert q["type"] in TYPES, q
        assert q["question_name"] and q["question_description"]
        assert isinstance(q["required"], bool)
        if q["type"] in ("text", "textarea", "password", "integer", "float"):
            assert isinstance(q["min"], int) and isinstance(q["max"], int) and q["min"] <= q["max"], q
        if q["type"] == "integer" and q["default"] != "":
            assert isinstance(q["default"], int) and q["min"] <= q["default"] <= q["max"], q
        if q["type"] == "text" and q["default"]:
            assert q["min"] <= len(q["default"]) <= q["max"], q
        if q["type"] in ("multiplechoice", "multiselect"):
            assert q["choices"], q


@pytest.mark.parametrize("path", SURVEYS, ids=lambda p: p.stem)
def test_survey_variables_exist(path):
    roles, plays = role_variables(), playbook_variables()
    for q in json.loads(path.read_text())["spec"]:
        assert q["variable"] in roles or q["variable"] in plays, f"{q['variable']} is no variable of the collection"
        if q["variable"] in roles and roles[q["variable"]]["type"] == "bool":
            # AWX sends multiple-choice answers as strings, and "false" is true in a template.
            assert q["type"] == "integer" and (q["min"], q["max"]) == (0, 1), q


def test_deploy_survey_asks_release_limit_and_force():
    spec = {q["variable"]: q for q in json.loads((AWX / "surveys" / "deploy.json").read_text())["spec"]}
    assert spec["baton_release"]["required"] and spec["baton_release"]["max"] == 64
    assert {"baton_target", "baton_serial", "baton_force"} <= set(spec)
    assert "baton_release" not in {q["variable"] for q in json.loads((AWX / "surveys" / "rollback.json").read_text())["spec"]}


def test_job_playbooks_import_the_collections_playbooks():
    for job in ("deploy", "rollback"):
        plays = yaml.safe_load((AWX / f"{job}.yml").read_text())
        assert [p["ansible.builtin.import_playbook"] for p in plays] == [f"baton.deploy.{job}"]


def test_execution_environment_files():
    ee = yaml.safe_load((AWX / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    assert ee["dependencies"]["galaxy"] == "collections/requirements.yml"
    assert (AWX / ee["dependencies"]["galaxy"]).is_file()
    pins = (REPO / "requirements-test.txt").read_text()
    assert ee["dependencies"]["ansible_core"]["package_pip"] in pins
    assert ee["dependencies"]["ansible_runner"]["package_pip"] in pins
    requirements = yaml.safe_load((AWX / "collections" / "requirements.yml").read_text())
    assert [c["name"].rstrip("/").split("/")[-1] for c in requirements["collections"]] == ["baton.deploy.git"]
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert meta["version"] == 1
    for kind in ("python", "system"):
        assert (REPO / meta["dependencies"][kind]).is_file()
    python = [ln for ln in (REPO / meta["dependencies"]["python"]).read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]
    assert python == [], "controller side needs nothing beyond ansible-core"
