# SPDX-License-Identifier: GPL-3.0-or-later
"""Every role variable is an option of the role's argument specs and is documented.

For each role under ``roles/``: the keys of ``defaults/main.yml`` are exactly
the options of the entry points in ``meta/argument_specs.yml`` (a templated
default is a key like any other), every option has a type, a description and
the default of ``defaults/main.yml``, and every option is named (in backticks)
in the role's section of ``docs/roles.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
DOCS = ROOT / "docs" / "roles.md"
ROLE_NAMES = sorted(path.name for path in ROLES.iterdir() if path.is_dir())
# The playbooks of the collection, whose include_role/import_role name entry points.
PLAYBOOKS = [ROOT / "site.yml", *sorted((ROOT / "playbooks").glob("*.yml"))]

# Keys left out when literal defaults are validated: the documentation, and the
# defaults themselves (a templated one is written in words).
UNCHECKED_KEYS = {"description", "version_added", "default"}
ROLE_CALLS = ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role")


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def role_defaults(role):
    """The mapping of defaults/main.yml ({} when the role has none)."""
    path = ROLES / role / "defaults" / "main.yml"
    return (_load(path) or {}) if path.exists() else {}


def role_specs(role):
    """The entry points of meta/argument_specs.yml."""
    return _load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]


def spec_options(specs):
    """Option name -> list of (entry point, option spec)."""
    options = {}
    for entry_point, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            options.setdefault(name, []).append((entry_point, option))
    return options


def doc_sections(text):
    """Second-level heading -> the text of its section."""
    sections = {}
    for match in re.finditer(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL):
        sections[match.group(1).strip()] = match.group(2)
    return sections


def table_variables(section):
    """The names in the first column of the section's tables."""
    return set(re.findall(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \|", section, re.MULTILINE))


def is_templated(value):
    """Whether a default (or anything inside it) is a Jinja template."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(is_templated(item) for item in value.values())
    if isinstance(value, list):
        return any(is_templated(item) for item in value)
    return False


def spec_problems(defaults, specs):
    """What keeps defaults/main.yml and the argument specs from being the same set of options."""
    problems = []
    options = spec_options(specs)
    for name in sorted(set(defaults) - set(options)):
        problems.append(f"{name}: in defaults/main.yml, no option of any entry point")
    for name in sorted(set(options) - set(defaults)):
        problems.append(f"{name}: an option, not in defaults/main.yml")
    for name in sorted(set(options) & set(defaults)):
        value = defaults[name]
        for entry_point, option in options[name]:
            where = f"{name} ({entry_point})"
            if "type" not in option:
                problems.append(f"{where}: no type")
            if not option.get("description"):
                problems.append(f"{where}: no description")
            if "default" not in option:
                problems.append(f"{where}: no default")
            elif is_templated(value):
                if not isinstance(option["default"], str):
                    problems.append(f"{where}: a templated default is documented in words (a string)")
            elif option["default"] != value:
                problems.append(f"{where}: default {option['default']!r}, defaults/main.yml has {value!r}")
    return problems


def doc_problems(role, specs, sections):
    """Options missing from the role's section of docs/roles.md, and table rows of no option."""
    if role not in sections:
        return [f"docs/roles.md has no section '## {role}'"]
    section = sections[role]
    named = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", section))
    options = set(spec_options(specs))
    problems = [f"{name}: not in the section {role} of docs/roles.md" for name in sorted(options - named)]
    problems += [
        f"{name}: a row of the section {role} of docs/roles.md, no option"
        for name in sorted(table_variables(section) - options)
    ]
    return problems


def literal_type_problems(defaults, specs):
    """Literal defaults that the declared types refuse (Ansible validates them at role start)."""
    problems = []
    for entry_point, spec in specs.items():
        options = spec.get("options") or {}
        checked = {
            key: {k: v for k, v in option.items() if k not in UNCHECKED_KEYS}
            for key, option in options.items()
        }
        values = {
            key: defaults[key] for key in options if key in defaults and not is_templated(defaults[key])
        }
        result = ArgumentSpecValidator(checked).validate(values)
        problems += [f"{entry_point}: {message}" for message in result.error_messages]
    return problems


def used_entry_points():
    """(role, entry point) of every tasks_from on a role of this collection in roles/ and the playbooks."""
    files = [*PLAYBOOKS, *sorted(ROLES.glob("*/tasks/*.yml"))]
    used = set()

    def walk(node):
        if isinstance(node, dict):
            for key in ROLE_CALLS:
                call = node.get(key)
                if isinstance(call, dict) and str(call.get("name", "")).startswith("smartmx.exim."):
                    used.add((call["name"].split(".")[-1], call.get("tasks_from", "main")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in files:
        walk(_load(path))
    return used


@pytest.fixture(scope="module")
def sections():
    return doc_sections(DOCS.read_text(encoding="utf-8"))


def test_there_are_roles():
    assert len(ROLE_NAMES) >= 6, ROLE_NAMES


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_meta_files_exist(role):
    for name in ("argument_specs.yml", "main.yml"):
        assert (ROLES / role / "meta" / name).is_file(), f"roles/{role}/meta/{name} is missing"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_galaxy_info(role):
    meta = _load(ROLES / role / "meta" / "main.yml")
    info = meta["galaxy_info"]
    for key in ("author", "description", "license", "min_ansible_version", "platforms"):
        assert info.get(key), f"roles/{role}/meta/main.yml: galaxy_info.{key}"
    assert meta.get("dependencies") == []


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_entry_points_have_task_files(role):
    for entry_point, spec in role_specs(role).items():
        assert (ROLES / role / "tasks" / f"{entry_point}.yml").is_file(), f"{role}: entry point {entry_point}"
        assert spec.get("short_description"), f"{role}: entry point {entry_point} has no short_description"
        assert spec.get("description"), f"{role}: entry point {entry_point} has no description"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_defaults_are_the_options(role):
    assert spec_problems(role_defaults(role), role_specs(role)) == []


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_literal_defaults_pass_the_types(role):
    assert literal_type_problems(role_defaults(role), role_specs(role)) == []


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_options_are_documented(role, sections):
    assert doc_problems(role, role_specs(role), sections) == []


def test_documented_roles_exist(sections):
    described = {name for name in sections if re.fullmatch(r"[a-z_]+", name)}
    assert described - set(ROLE_NAMES) == set()


def test_internal_vars_are_not_options():
    for role in ROLE_NAMES:
        path = ROLES / role / "vars" / "main.yml"
        internal = set(_load(path) or {}) if path.exists() else set()
        assert internal & set(spec_options(role_specs(role))) == set(), role


def test_used_entry_points_have_specs():
    used = used_entry_points()
    assert ("mx_secondary", "install") in used
    missing = sorted((role, entry) for role, entry in used if entry not in role_specs(role))
    assert missing == []


def test_checks_catch_an_undocumented_variable(sections):
    """A variable added to defaults/main.yml alone fails both checks."""
    role = "mx_secondary"
    defaults = dict(role_defaults(role), mx_secondary_added_only_here=1)
    specs = role_specs(role)
    assert spec_problems(defaults, specs) == [
        "mx_secondary_added_only_here: in defaults/main.yml, no option of any entry point"
    ]
    specs["main"]["options"]["mx_secondary_added_only_here"] = {
        "type": "int",
        "default": 1,
        "description": "x",
    }
    assert spec_problems(defaults, specs) == []
    assert doc_problems(role, specs, sections) == [
        "mx_secondary_added_only_here: not in the section mx_secondary of docs/roles.md"
    ]


def test_checks_catch_a_wrong_default_or_type():
    role = "mx_primary"
    defaults = dict(role_defaults(role), mx_primary_etrn_timeout="soon", mx_primary_maildir="Mail")
    specs = role_specs(role)
    problems = spec_problems(defaults, specs)
    assert any(p.startswith("mx_primary_maildir (main): default 'Maildir'") for p in problems), problems
    assert any("mx_primary_etrn_timeout" in p for p in literal_type_problems(defaults, specs))
