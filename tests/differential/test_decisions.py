# SPDX-License-Identifier: GPL-3.0-or-later
"""The secondary decides, from the model's lists, what the primary decides: exim against exim.

For every alias file of the corpus, every local domain (gnu.test and fsf.test) and
every address (each key, each local user, unknown local parts, and every address
of the model's ``rcpt``):

* the primary's RCPT answer (``exim -bh`` on stock exim, ``verify = recipient``)
  equals the answer of a secondary-like exim whose RCPT ACL reads only the
  ``rcpt`` list that ``secondary_lists`` rendered (heartbeat fresh), for
  ``pfr_strategy=patch`` on the patched exim and ``precompute`` on stock exim;
* the secondary-like exim's routing (``exim -bt``) reading the generation
  (``aliases`` with relocated ``:include:`` paths, ``punt``) equals the model's
  ``deliver`` and ``punt`` for that address, for both strategies.

Needs Docker, ``smartmx-lab/debian:bookworm`` and the patched debs (built by the
exim_build role on a cold cache, see patched_exim.py); without them the tests
fail, they never skip. Every mismatch goes to $SMARTMX_DECISION_MISMATCHES
(default /var/tmp/smartmx/decision-mismatches.txt).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import exim_decisions as dec
import exim_truth
import pytest
from test_against_exim import _usable

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
REPORT = Path(os.environ.get("SMARTMX_DECISION_MISMATCHES", "/var/tmp/smartmx/decision-mismatches.txt"))
ALIAS_FILES = sorted(p.name for p in (CORPUS / "aliases").iterdir() if p.is_file())
DOMAINS = list(exim_truth.LOCAL_DOMAINS)
STRATEGIES = ("patch", "precompute")
# Local parts that are neither alias nor user in any file (one in capitals).
UNKNOWN = ("smx-no-such-user", "Smx-Nobody.Here")
CONTAINERS = {"patch": dec.PATCHED_CONTAINER, "precompute": dec.STOCK_CONTAINER}
MIN_ADDRESSES = 1500


def _model(corpus: dict, name: str, strategy: str, domains: list[str]) -> dict:
    from ansible_collections.smartmx.exim.plugins.module_utils._aliases import parse_aliases, secondary_routes

    return secondary_routes(
        parse_aliases(corpus["aliases"][name], source=name),
        domains,
        includes=corpus["includes"],
        users=corpus["users"],
        pfr_strategy=strategy,
        source=name,
        include_directory=exim_truth.INCLUDE_DIR,
    )


def _lists(table: dict) -> dict:
    from ansible_collections.smartmx.exim.plugins.module_utils._alias_lists import secondary_lists

    return secondary_lists(table)


def _addresses(corpus: dict, name: str, tables: list[dict]) -> list[str]:
    """Every address compared for one alias file, on every local domain."""
    local_parts = set(exim_truth.lsearch_keys(corpus["aliases"][name])) | set(corpus["users"]) | set(UNKNOWN)
    addresses = {f"{lp}@{domain}" for lp in local_parts for domain in DOMAINS}
    for table in tables:
        addresses |= {a for a in table.get("rcpt", {}) if a.rpartition("@")[2] in DOMAINS}
    return sorted(a for a in addresses if dec.sendable(a))


def _route(tables_by_domain: dict, address: str):
    """The model's route for an address: routes_by_domain if given, else the run with that domain first."""
    local, _sep, domain = address.rpartition("@")
    table = tables_by_domain[domain]
    by_domain = table.get("routes_by_domain")
    routes = by_domain.get(domain, {}) if isinstance(by_domain, dict) else table["routes"]
    if local in routes:
        return routes[local]
    return {exim_truth.ascii_lower(k): v for k, v in routes.items()}.get(exim_truth.ascii_lower(local))


def expected_routing(route) -> dict:
    """deliver / punt / refused as the model says (refused only when nothing is delivered or punted)."""
    if route is None:
        return {"deliver": [], "punt": [], "refused": "fail"}
    if route["action"] in ("fail", "defer"):
        return {"deliver": [], "punt": [], "refused": route["action"]}
    deliver = sorted({exim_truth._norm_address(a) for a in route.get("deliver", [])})
    punt = sorted({exim_truth.ascii_lower(a) for a in route.get("punt", [])})
    refused = None
    if not deliver and not punt:
        # nothing delivered or punted: the action says why, or else the leaves do
        kinds = {leaf.get("type") for leaf in route.get("leaves", [])}
        if route["action"] in ("fail", "defer", "blackhole"):
            refused = route["action"]
        elif "defer" in kinds:
            refused = "defer"
        elif kinds == {"blackhole"}:
            refused = "blackhole"
        else:
            refused = "fail"
    return {"deliver": deliver, "punt": punt, "refused": refused}


def exim_routing(found: dict) -> dict:
    """deliver / punt / refused as the secondary's exim -bt showed them (a pfr child is always reported)."""
    kinds = {kind for kind, _text in found["other"]}
    refused = None
    if found["self"] and "pfr" not in kinds:
        # The address itself fails or defers: refused at RCPT (test "rcpt" proves it),
        # so what exim routes for the items before a :fail: is moot here; reached as a
        # child, those items are compared in the parent's route.
        return {"deliver": [], "punt": [], "refused": found["self"]}
    if "pfr" in kinds:
        refused = "pfr: " + ", ".join(sorted(text for kind, text in found["other"] if kind == "pfr"))
    elif not found["deliver"] and not found["punt"]:
        for kind in ("defer", "fail", "unknown", "blackhole"):
            if kind in kinds:
                refused = "fail" if kind == "unknown" else kind
                break
        else:
            refused = "nothing"
    return {"deliver": sorted(found["deliver"]), "punt": sorted(found["punt"]), "refused": refused}


def _write_report(result: dict) -> None:
    lines = [
        "# Decision differential test (tests/differential/test_decisions.py)",
        f"# run at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {result['seconds']:.1f} s",
    ]
    for (kind, strategy, domain), (agree, total) in sorted(result["figures"].items()):
        lines.append(f"# {kind}, pfr_strategy={strategy}, {domain}: {agree} of {total} addresses agree")
    lines.append("")
    for m in result["mismatches"]:
        lines += [
            f"== {m['file']}: {m['address']}  ({m['kind']}, pfr_strategy={m['strategy']})",
            f"   {m['left_name']}: {m['left']}",
            f"   {m['right_name']}: {m['right']}",
            "",
        ]
    try:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text("\n".join(lines), encoding="utf-8")
    except OSError:
        pass


def _run_all(corpus: dict) -> dict:
    start = time.monotonic()
    import patched_exim

    stock_image = exim_truth.ensure_image()
    patched_image = patched_exim.ensure_image()
    exim_truth.ensure_container(dec.PRIMARY_CONTAINER, stock_image)
    exim_truth.ensure_container(dec.STOCK_CONTAINER, stock_image)
    exim_truth.ensure_container(dec.PATCHED_CONTAINER, patched_image)
    exim_truth.install_corpus(CORPUS, corpus["users"], container=dec.PRIMARY_CONTAINER)

    figures: dict[tuple[str, str, str], list[int]] = {}
    mismatches: list[dict] = []
    per_test: dict[tuple[str, str, str], list[dict]] = {}
    addresses_by_file = {}

    def record(kind, strategy, name, address, left, right, shown=None):
        """Count one comparison; keep a mismatch with what to show for each side."""
        key = (kind, strategy, address.rpartition("@")[2])
        figures.setdefault(key, [0, 0])
        figures[key][1] += 1
        bucket = per_test.setdefault((kind, strategy, name), [])
        if left[1] == right[1]:
            figures[key][0] += 1
            return
        shown = shown or (left[1], right[1])
        m = {
            "kind": kind,
            "strategy": strategy,
            "file": name,
            "address": address,
            "left_name": left[0],
            "left": shown[0],
            "right_name": right[0],
            "right": shown[1],
        }
        bucket.append(m)
        mismatches.append(m)

    for name in ALIAS_FILES:
        tables = {
            strategy: {
                domain: _model(corpus, name, strategy, [domain, *[d for d in DOMAINS if d != domain]])
                for domain in DOMAINS
            }
            for strategy in STRATEGIES
        }
        addresses = _addresses(corpus, name, [tables[s][DOMAINS[0]] for s in STRATEGIES])
        addresses_by_file[name] = addresses
        cfg = f"/smx/rcpt/{name}.conf"
        dec.write_config(
            dec.PRIMARY_CONTAINER, cfg, dec.primary_rcpt_config(f"{exim_truth.REMOTE_CORPUS}/aliases/{name}")
        )
        primary = dec.rcpt_answers(dec.PRIMARY_CONTAINER, cfg, addresses)
        for strategy in STRATEGIES:
            container = CONTAINERS[strategy]
            table = tables[strategy][DOMAINS[0]]
            base = f"{dec.SECONDARY_ROOT}/{name}/{strategy}"
            gen_dir = f"{base}/generations/g1"
            files = dec.generation_files(corpus["aliases"][name], corpus["includes"], _lists(table), gen_dir)
            dec.install_generation(container, base, files)
            scfg = f"{base}.conf"
            dec.write_config(container, scfg, dec.secondary_config(base, strategy))
            secondary = dec.rcpt_answers(container, scfg, addresses)
            routing = dec.secondary_routing(container, scfg, addresses)
            for address in addresses:
                p_code, p_text = primary[address]
                s_code, s_text = secondary[address]
                local, _sep, domain = address.rpartition("@")
                listed = table.get("rcpt", {}).get(f"{exim_truth.ascii_lower(local)}@{domain}", "absent")
                record(
                    "rcpt",
                    strategy,
                    name,
                    address,
                    ("primary  ", dec.answer_class(p_code)),
                    ("secondary", dec.answer_class(s_code)),
                    (f"{p_code} {p_text}", f"{s_code} {s_text}  (model rcpt: {listed})"),
                )
                record(
                    "route",
                    strategy,
                    name,
                    address,
                    ("exim -bt", exim_routing(routing[address])),
                    ("model   ", expected_routing(_route(tables[strategy], address))),
                )
    result = {
        "figures": {k: tuple(v) for k, v in figures.items()},
        "mismatches": mismatches,
        "per_test": per_test,
        "addresses": addresses_by_file,
        "seconds": time.monotonic() - start,
    }
    _write_report(result)
    return result


@pytest.fixture(scope="session")
def corpus() -> dict:
    return exim_truth.load_corpus(CORPUS)


@pytest.fixture(scope="session")
def decisions(corpus) -> dict:
    try:
        return _run_all(corpus)
    except exim_truth.HarnessError as exc:
        return {"error": f"exim is not available for the decision test: {exc}"}
    except ImportError as exc:
        return {"error": f"the alias model (secondary_routes, secondary_lists) cannot be imported: {exc}"}


def test_every_domain_and_enough_addresses(decisions):
    decisions = _usable(decisions)
    total = sum(len(a) for a in decisions["addresses"].values())
    assert total >= MIN_ADDRESSES, f"only {total} addresses compared"
    for kind in ("rcpt", "route"):
        for strategy in STRATEGIES:
            for domain in DOMAINS:
                assert decisions["figures"][kind, strategy, domain][1] > 0
    # every RCPT of a session is answered: no recipients_max cut (checked per session too)
    for container, cfg in [
        (dec.PRIMARY_CONTAINER, f"/smx/rcpt/{ALIAS_FILES[0]}.conf"),
        *((CONTAINERS[s], f"{dec.SECONDARY_ROOT}/{ALIAS_FILES[0]}/{s}.conf") for s in STRATEGIES),
    ]:
        res = exim_truth.dexec(f"exim -C {cfg} -bP recipients_max", container=container)
        assert res.stdout.strip() == "recipients_max = 0", (container, res.stdout)


WHAT = {
    "rcpt": "the primary's RCPT answer vs the secondary's",
    "route": "the secondary's exim -bt vs the model",
}


@pytest.mark.parametrize("alias_file", ALIAS_FILES)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("kind", WHAT)
def test_decisions_agree(decisions, kind, strategy, alias_file):
    """rcpt: the secondary answers as the primary; route: the secondary routes as the model says."""
    decisions = _usable(decisions)
    bad = decisions["per_test"].get((kind, strategy, alias_file), [])
    if bad:
        lines = [f"{len(bad)} addresses differ ({WHAT[kind]}); all of them in {REPORT}:"]
        for m in bad[:25]:
            lines += [
                f"  {m['address']}",
                f"    {m['left_name']}: {m['left']}",
                f"    {m['right_name']}: {m['right']}",
            ]
        pytest.fail("\n".join(lines), pytrace=False)


def test_secondary_acl_staleness(decisions, corpus):
    """The secondary-like ACL: an unknown address is 550 only while the heartbeat is fresh.

    Stale or missing heartbeat, or a missing rcpt list: 451 for it, never 550 or 250;
    known addresses keep their answers while the list is readable.
    """
    _usable(decisions)
    name, strategy = "13-decisions", "precompute"
    container = CONTAINERS[strategy]
    table = _model(corpus, name, strategy, DOMAINS)
    base = f"{dec.SECONDARY_ROOT}/staleness"
    files = dec.generation_files(
        corpus["aliases"][name], corpus["includes"], _lists(table), f"{base}/generations/g1"
    )
    dec.install_generation(container, base, files)
    cfg = f"{base}.conf"
    dec.write_config(container, cfg, dec.secondary_config(base, strategy))
    probe = ["smx-no-such-user@gnu.test", "xa@fsf.test", "xc@gnu.test", "xa@gnu.test"]

    def classes():
        return [dec.answer_class(code) for code, _text in dec.rcpt_answers(container, cfg, probe).values()]

    assert classes() == ["reject", "accept", "defer", "reject"]
    dec.set_heartbeat(container, base, dec.HEARTBEAT_MAX * 2)
    assert classes() == ["defer", "accept", "defer", "defer"]
    dec.set_heartbeat(container, base, None)
    assert classes() == ["defer", "accept", "defer", "defer"]
    dec.set_heartbeat(container, base, 0)
    exim_truth.dexec(f"rm {base}/generations/g1/rcpt", container=container)
    assert classes() == ["defer", "defer", "defer", "defer"]


def test_a_pipe_reaching_the_secondary_is_a_mismatch(decisions, corpus):
    """Control: stock exim given the patch strategy's lists (pfr aliases not punted) and no
    transport_pfr must show the pipe, file or pfr child, and the comparison must flag it."""
    _usable(decisions)
    name = "13-decisions"
    container = CONTAINERS["precompute"]
    table = _model(corpus, name, "patch", DOMAINS)
    base = f"{dec.SECONDARY_ROOT}/control"
    files = dec.generation_files(
        corpus["aliases"][name], corpus["includes"], _lists(table), f"{base}/generations/g1"
    )
    dec.install_generation(container, base, files)
    cfg = f"{base}.conf"
    dec.write_config(container, cfg, dec.secondary_config(base, "precompute"))
    addresses = ["xg@gnu.test", "outer@fsf.test", "file-fail@gnu.test", "xf@fsf.test"]
    routing = dec.secondary_routing(container, cfg, addresses)
    for address in addresses:
        got = exim_routing(routing[address])
        assert got["refused"] and got["refused"].startswith("pfr: "), (address, got)
        assert got != expected_routing(_route({d: table for d in DOMAINS}, address)), address
