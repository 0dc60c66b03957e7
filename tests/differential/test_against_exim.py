# SPDX-License-Identifier: GPL-3.0-or-later
"""The alias model routes every key of the corpus exactly as stock exim -bt does.

Needs Docker and the image built from tests/differential/Dockerfile (built on
demand from smartmx-lab/debian:bookworm); without them the tests fail.
Every run rewrites the mismatch report (MISMATCH_REPORT, or $SMARTMX_MISMATCHES).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import exim_truth
import pytest

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
MISMATCH_REPORT = Path(os.environ.get("SMARTMX_MISMATCHES", "/var/tmp/smartmx/mismatches.txt"))
MIN_FILES = 8
MIN_LOCAL_PARTS = 300
ALIAS_FILES = sorted(p.name for p in (CORPUS / "aliases").iterdir() if p.is_file())
# Both strategies must give the same leaves (they differ only in what the secondary punts).
STRATEGIES = ("patch", "precompute")
# (include_directory, domains): the alias router with include_directory (the include
# dir of the corpus) and without it (Debian's stock system_aliases router), keys routed
# at gnu.test; and keys routed at the second local domain. The model is told the same.
GNU, FSF = exim_truth.LOCAL_DOMAINS
VARIANTS = {
    "incdir": (exim_truth.INCLUDE_DIR, [GNU, FSF]),
    "noincdir": (None, [GNU, FSF]),
    "fsf": (exim_truth.INCLUDE_DIR, [FSF, GNU]),
}


def _fmt(leaves) -> str:
    if not isinstance(leaves, list):
        return repr(leaves)
    return ", ".join(f"{leaf.get('type')}:{leaf.get('value')!r}" for leaf in leaves) or "(none)"


def _key_lines(text: str, local_part: str) -> str:
    """The first line of the file whose key is local_part (what exim reads), for the report."""
    for number, line in enumerate(text.split("\n"), 1):
        if exim_truth.lsearch_keys(line) == [local_part]:
            return f"line {number}: {line.rstrip()}"
    return "(no line)"


def _model_leaves(corpus: dict, strategy: str, include_directory: str | None, domains: list) -> dict:
    """Run parse_aliases + secondary_routes for every file; {file: routes or exception}."""
    from ansible_collections.smartmx.exim.plugins.module_utils._aliases import (
        parse_aliases,
        secondary_routes,
    )

    out = {}
    for name, text in corpus["aliases"].items():
        try:
            parsed = parse_aliases(text, source=name)
            table = secondary_routes(
                parsed,
                domains,
                includes=corpus["includes"],
                users=corpus["users"],
                pfr_strategy=strategy,
                source=name,
                include_directory=include_directory,
            )
            out[name] = table["routes"]
        except Exception as exc:  # reported per local part, the run goes on
            out[name] = exc
    return out


def _lookup(routes: dict, local_part: str):
    if local_part in routes:
        route = routes[local_part]
    else:
        folded = {exim_truth.ascii_lower(k): v for k, v in routes.items()}
        if local_part not in folded:
            return "no route for this local part"
        route = folded[local_part]
    try:
        return route["leaves"]
    except (KeyError, TypeError):
        return f"route without leaves: {route!r}"


def _write_report(mismatches: list[dict], total: int, seconds: float) -> None:
    lines = [
        "# Differential test: stock exim -bt (tests/differential/exim_truth.py) vs the alias model",
        f"# run at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {seconds:.1f} s",
    ]
    for variant in VARIANTS:
        for strategy in STRATEGIES:
            bad = sum(1 for m in mismatches if (m["variant"], m["strategy"]) == (variant, strategy))
            lines.append(f"# {variant}, pfr_strategy={strategy}: {total - bad} of {total} local parts agree")
    lines += [
        "# leaves are type:value; 'only exim' / 'only model' list the differences",
        "",
    ]
    for m in mismatches:
        lines += [
            f"== {m['file']}: {m['local_part']}  ({m['variant']}, pfr_strategy={m['strategy']})",
            f"   {m['source']}",
            f"   exim : {_fmt(m['exim'])}",
            f"   model: {_fmt(m['model'])}",
        ]
        if isinstance(m["model"], list):
            exim_set = {(leaf["type"], leaf["value"]) for leaf in m["exim"]}
            model_set = {
                (leaf.get("type"), leaf.get("value")) for leaf in m["model"] if isinstance(leaf, dict)
            }
            lines.append(f"   only exim : {sorted(exim_set - model_set)}")
            lines.append(f"   only model: {sorted(model_set - exim_set, key=repr)}")
        lines.append("")
    try:
        MISMATCH_REPORT.parent.mkdir(parents=True, exist_ok=True)
        MISMATCH_REPORT.write_text("\n".join(lines), encoding="utf-8")
    except OSError:
        pass


@pytest.fixture(scope="session")
def corpus() -> dict:
    return exim_truth.load_corpus(CORPUS)


@pytest.fixture(scope="session")
def comparison(corpus) -> dict:
    """Route the whole corpus through exim and the model once; report mismatches per file."""
    start = time.monotonic()
    try:
        truth = {
            variant: exim_truth.exim_leaves(CORPUS, include_directory=directory, domain=domains[0])
            for variant, (directory, domains) in VARIANTS.items()
        }
    except exim_truth.HarnessError as exc:
        return {"error": f"stock exim is not available for the differential test: {exc}"}
    try:
        model = {
            (variant, strategy): _model_leaves(corpus, strategy, directory, domains)
            for variant, (directory, domains) in VARIANTS.items()
            for strategy in STRATEGIES
        }
    except ImportError as exc:
        return {"error": f"the alias model cannot be imported: {exc}"}
    per_file: dict[tuple[str, str, str], list[dict]] = {}
    mismatches = []
    total = sum(len(keys) for keys in truth["incdir"].values())
    for (variant, strategy), routes_by_file in model.items():
        for name in sorted(truth[variant]):
            per_file[variant, strategy, name] = []
            routes = routes_by_file[name]
            for local_part, exim_leaves in truth[variant][name].items():
                if isinstance(routes, Exception):
                    got = f"model raised {type(routes).__name__}: {routes}"
                else:
                    got = _lookup(routes, local_part)
                if got != exim_leaves:
                    record = {
                        "variant": variant,
                        "strategy": strategy,
                        "file": name,
                        "local_part": local_part,
                        "source": _key_lines(corpus["aliases"][name], local_part),
                        "exim": exim_leaves,
                        "model": got,
                    }
                    per_file[variant, strategy, name].append(record)
                    mismatches.append(record)
    _write_report(mismatches, total, time.monotonic() - start)
    return {"truth": truth["incdir"], "truth_by_variant": truth, "per_file": per_file, "total": total}


def _usable(comparison: dict) -> dict:
    """Fail (never skip) when exim or the model could not be run."""
    if "error" in comparison:
        pytest.fail(comparison["error"], pytrace=False)
    return comparison


def test_corpus_is_big_enough(comparison):
    comparison = _usable(comparison)
    truth = comparison["truth"]
    assert len(truth) >= MIN_FILES, f"only {len(truth)} alias files in {CORPUS}"
    assert comparison["total"] >= MIN_LOCAL_PARTS, f"only {comparison['total']} local parts in {CORPUS}"
    assert all(truth.values()), "an alias file without keys"


@pytest.mark.parametrize("alias_file", ALIAS_FILES)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_leaves_equal_exim(comparison, variant, strategy, alias_file):
    comparison = _usable(comparison)
    assert alias_file in comparison["truth"]
    bad = comparison["per_file"][variant, strategy, alias_file]
    if bad:
        report = [f"{len(bad)} of {len(comparison['truth'][alias_file])} local parts differ from exim:"]
        for m in bad[:25]:
            report += [
                f"  {m['local_part']}  ({m['source']})",
                f"    exim : {_fmt(m['exim'])}",
                f"    model: {_fmt(m['model'])}",
            ]
        if len(bad) > 25:
            report.append(f"  ... and {len(bad) - 25} more in {MISMATCH_REPORT}")
        pytest.fail("\n".join(report), pytrace=False)


# Keys whose -bt output mixes every kind of line; routed one exim process each they
# must give what the batched run gave (duplicates across addresses, ancestor limits).
SINGLE_CHECK = {
    "01-gnu-site": ["trolls", "root", "staff-all", "nobody", "noreply", "on-leave"],
    "05-items": ["fail-after-items", "tricky-pipe", "bs-offsite", "blackhole-after", "adb"],
    "07-nesting-loops": ["chain105-3", "chain105-4", "loop3-a", "cross-a", "via-defer", "diamond"],
    "12-more-edges": ["long-line", "via-fsf", "self-include", "include-blackhole-and-user"],
}


def test_batched_run_equals_one_exim_per_address(comparison):
    comparison = _usable(comparison)
    for name, keys in SINGLE_CHECK.items():
        single = exim_truth.exim_leaves(CORPUS, files=[name], local_parts=keys, batch=1)[name]
        for key in keys:
            assert single[key] == comparison["truth"][name][key], f"{name}: {key}"
