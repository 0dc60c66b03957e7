# SPDX-License-Identifier: GPL-3.0-or-later
"""Random alias files (fixed seeds) routed by stock exim -bt and by the alias model.

The generator mixes every item kind, separators, continuation lines, blank and
comment lines inside entries, include files, loops, case and domain variants and
syntax errors; the hand-written corpus stays the reference, this widens it.
More seeds: SMARTMX_RANDOM_SEEDS=0-99 pytest tests/differential/test_random_against_exim.py
"""

from __future__ import annotations

import os
import random

import exim_truth
import pytest

USERS = ("adb", "nemo", "pk", "karl", "lisa")
N_KEYS = 25
N_INCLUDES = 4
INCLUDE_SUBDIR = "rnd"


def _seeds() -> list[int]:
    first, _dash, last = os.environ.get("SMARTMX_RANDOM_SEEDS", "0-2").partition("-")
    return list(range(int(first), int(last or first) + 1))


def _item(rng: random.Random, first_include: int = 0) -> str:
    """One list item; include files are only named from first_include on (no include loops:
    exim recurses through those until its stack overflows, see tests/corpus/README.md)."""
    key = f"k{rng.randrange(N_KEYS)}"
    user = rng.choice(USERS)
    include = rng.randrange(first_include, N_INCLUDES) if first_include < N_INCLUDES else None
    return rng.choice([
        key, key.upper(), "\\" + key, f"{key}@fsf.test", f"{key}@GNU.TEST", f"<{key}>", f"{key} (c)",
        user, user.capitalize(), "\\" + user,
        f"x{rng.randrange(5)}@example.org", f"X{rng.randrange(3)}@Example.Net", '"q k"@example.org',
        f'"|/bin/p{rng.randrange(3)} a,b"', f"|/bin/q{rng.randrange(3)}",
        f"/arch/f{rng.randrange(3)}", f"/arch/d{rng.randrange(2)}/", '"/arch/s p"',
        ":fail: " + rng.choice(["", "gone", "550 5.1.1 no"]), ":defer: " + rng.choice(["", "later"]),
        ":blackhole:", ":unknown:",
        f":include:{exim_truth.INCLUDE_DIR}/{INCLUDE_SUBDIR}/i{include}" if include is not None else key,
        f"ghost{rng.randrange(3)}", "bad item", f"{key}@", "# c", "",
    ])  # fmt: skip


def _value(rng: random.Random, include_file: int | None = None) -> str:
    seps = [", ", ",", " , ", ",\n  ", ",\n\t", ",\n\n  ", ",\n# x\n  "]
    first_include = 0
    if include_file is not None:
        seps.append("\n")
        first_include = include_file + 1
    items = [_item(rng, first_include) for _n in range(rng.choice([1, 1, 2, 2, 3, 4]))]
    text = items[0]
    for item in items[1:]:
        text += rng.choice(seps) + item
    return text


def generate(seed: int) -> tuple[str, dict[str, str]]:
    """One random alias file and its include files ({path on the primary: text})."""
    rng = random.Random(seed)
    lines = []
    for i in range(N_KEYS):
        key = f"k{i}"
        if rng.random() < 0.1:
            key = key.upper()
        if rng.random() < 0.05:
            key = f'"{key}"'
        lines.append(key + rng.choice([": ", ":", " ", "\t", " : "]) + _value(rng))
        if rng.random() < 0.05:
            lines.append(f"k{rng.randrange(N_KEYS)}: dup@example.org")
    includes = {
        f"{exim_truth.INCLUDE_DIR}/{INCLUDE_SUBDIR}/i{j}": _value(rng, include_file=j) + "\n"
        for j in range(N_INCLUDES)
    }
    return "\n".join(lines) + "\n", includes


@pytest.mark.parametrize("seed", _seeds())
def test_random_file_routes_like_exim(tmp_path, seed):
    from ansible_collections.smartmx.exim.plugins.module_utils._aliases import (
        parse_aliases,
        secondary_routes,
    )

    text, includes = generate(seed)
    (tmp_path / "aliases").mkdir()
    (tmp_path / "aliases" / "random").write_text(text, encoding="utf-8")
    for path, body in includes.items():
        dest = tmp_path / "include" / path[len(exim_truth.INCLUDE_DIR) + 1 :]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(body, encoding="utf-8")
    (tmp_path / "users").write_text("\n".join(USERS) + "\n", encoding="utf-8")
    users = {u: {"procmail": False, "forward": False} for u in USERS}
    problems = []
    for directory in (exim_truth.INCLUDE_DIR, None):
        try:
            truth = exim_truth.exim_leaves(tmp_path, include_directory=directory)["random"]
        except exim_truth.HarnessError as exc:
            pytest.fail(f"stock exim is not available for the differential test: {exc}", pytrace=False)
        routes = secondary_routes(
            parse_aliases(text, source="random"),
            list(exim_truth.LOCAL_DOMAINS),
            includes=includes,
            users=users,
            source="random",
            include_directory=directory,
        )["routes"]
        for local_part, leaves in truth.items():
            got = routes.get(local_part, {}).get("leaves")
            if got != leaves:
                problems.append(
                    f"{local_part} (include_directory={directory}):\n  exim : {leaves}\n  model: {got}"
                )
    assert not problems, f"seed {seed}:\n" + "\n".join(problems) + "\n--- alias file ---\n" + text
