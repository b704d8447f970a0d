"""Drive every operation of the served OpenAPI v3 documents with schemathesis (issue 3, item 7).

For each operation of each group-version document the server publishes at ``/openapi/v3``,
schemathesis generates a fixed number of requests (valid ones, then deliberately invalid ones),
derandomized by the seed in ``corpus/bounds.json``, and sends them to a real api-server over TLS as
the admin. The check: no 5xx, no hang, every error body a v1 Status carrying the HTTP code, and the
server still ready afterwards. The counts per operation (requests, status codes) are printed and
written to ``openapi-fuzz-counts.json`` in the test's tmp dir.
"""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from schemathesis import GenerationMode

from tests.fuzz.conftest import NAMESPACE, Client, bounds
from tests.support.apiserver import ApiServer

MODES = {"positive": GenerationMode.POSITIVE, "negative": GenerationMode.NEGATIVE}


def _session(server: ApiServer) -> requests.Session:
    s = requests.Session()
    # REQUESTS_CA_BUNDLE and friends would otherwise replace our CA on every request
    s.trust_env = False
    s.verify = str(server.pki.ca_crt)
    s.cert = (str(server.pki.admin_crt), str(server.pki.admin_key))
    return s


def _documents(session: requests.Session, base: str) -> dict[str, dict[str, Any]]:
    index = session.get(f"{base}/openapi/v3", timeout=30).json()
    docs = {}
    for gv, ref in sorted(index["paths"].items()):
        resp = session.get(base + ref["serverRelativeURL"], timeout=30)
        assert resp.status_code == 200, (gv, resp.status_code)
        docs[gv] = resp.json()
    return docs


def _tame_watch(case: Any) -> None:
    """A generated watch would stream until its timeout: bound it to one second."""
    q = case.query or {}
    if str(q.get("watch", "")).lower() in ("true", "1") or str(q.get("follow", "")).lower() in ("true", "1"):
        q["timeoutSeconds"] = 1
        case.query = q


def _check(label: str, resp: requests.Response, problems: list[str]) -> None:
    code = resp.status_code
    if code >= 500:
        problems.append(f"{label}: {code} {resp.text[:300]}")
        return
    if code < 400:
        return
    try:
        st = resp.json()
    except ValueError:
        problems.append(f"{label}: {code} with a non-JSON body {resp.text[:200]!r}")
        return
    if not (isinstance(st, dict) and st.get("kind") == "Status" and st.get("code") == code):
        problems.append(f"{label}: {code} body is not a matching Status: {resp.text[:300]}")
    elif "Traceback" in resp.text:
        problems.append(f"{label}: traceback in the body")


def _run_examples(
    strategy: Any,
    label: str,
    seen: collections.Counter[str],
    problems: list[str],
    fixed_seed: int,
    examples: int,
    base: str,
    session: requests.Session,
    timeout: float,
) -> None:
    """Send ``examples`` cases drawn (reproducibly, from ``fixed_seed``) from ``strategy``."""

    @seed(fixed_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        _tame_watch(case)
        try:
            resp = case.call(base_url=base, session=session, timeout=timeout, verify=session.verify, cert=session.cert)
        except requests.RequestException as e:
            seen["error"] += 1
            problems.append(f"{label}: no answer ({type(e).__name__}: {str(e)[:200]})")
            return
        seen[str(resp.status_code)] += 1
        _check(label, resp, problems)

    run()


def test_every_operation_survives_generated_input(client: Client, fuzz_server: ApiServer, tmp_path: Path) -> None:
    b = bounds()
    base = fuzz_server.url
    session = _session(fuzz_server)
    docs = _documents(session, base)
    assert "api/v1" in docs and "apis/apps/v1" in docs, sorted(docs)
    counts: dict[str, collections.Counter[str]] = {}
    problems: list[str] = []
    skipped: list[str] = []
    started = time.monotonic()
    deadline = started + float(b["budget_seconds"])
    timeout = float(b["request_timeout_seconds"])
    per_pass = int(b["examples_per_pass"])
    operations = [op.ok() for doc in docs.values() for op in schemathesis.openapi.from_dict(doc).get_all_operations()]
    passes_done = 0
    # pass by pass over every operation, so an exhausted budget still leaves each one covered
    for mode_name, offset in b["passes"]:
        mode = MODES[mode_name]
        for op in operations:
            label = f"{op.method.upper()} {op.path}"
            if time.monotonic() > deadline:
                skipped.append(f"{mode_name}/{offset} {label}")
                continue
            seen = counts.setdefault(label, collections.Counter())
            # valid input goes to the namespace that exists, so it reaches decoding and validation
            fixed = {"namespace": NAMESPACE} if mode == GenerationMode.POSITIVE and "{namespace}" in op.path else None
            strategy = op.as_strategy(generation_mode=mode, path_parameters=fixed)
            _run_examples(strategy, label, seen, problems, int(b["seed"]) + offset, per_pass, base, session, timeout)
        if time.monotonic() <= deadline:
            passes_done += 1

    elapsed = time.monotonic() - started
    report = {
        "seed": b["seed"],
        "elapsed_seconds": round(elapsed, 1),
        "documents": sorted(docs),
        "operations": len(counts),
        "requests": sum(sum(c.values()) for c in counts.values()),
        "passes_completed": passes_done,
        "skipped_over_budget": skipped,
        "counts": {label: dict(sorted(c.items())) for label, c in sorted(counts.items())},
    }
    out = tmp_path / "openapi-fuzz-counts.json"
    out.write_text(json.dumps(report, indent=1))
    if os.environ.get("KUBEHA_FUZZ_REPORT"):
        Path(os.environ["KUBEHA_FUZZ_REPORT"]).write_text(json.dumps(report, indent=1))
    print(
        f"\nopenapi fuzz: {report['operations']} operations, {report['requests']} requests, {passes_done} passes in {elapsed:.0f}s"
    )
    for label, c in sorted(counts.items()):
        print(f"  {label}: {sum(c.values())} requests, codes {dict(sorted(c.items()))}")
    print(f"  report: {out}")

    assert not problems, "\n".join(problems[:30])
    required = int(b["required_passes"])
    assert passes_done >= required, f"over the {b['budget_seconds']}s budget before {required} passes: {skipped[:10]}"
    client.healthy()
    # and it still serves a real write
    name = f"after-fuzz-{int(time.time())}"
    client.json("POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps", {"metadata": {"name": name}})


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # schemathesis' transport may build its own request settings: keep the environment's CA out
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
