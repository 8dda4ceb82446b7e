"""The pip-audit wrapper fails on findings and says "skipped" only when nothing could be looked up."""

from __future__ import annotations

import stat
from pathlib import Path

from devtools import vuln_audit


def _skipped(name: str) -> dict[str, str]:
    return {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} (1.0)"}


def test_a_finding_fails() -> None:
    report = {"dependencies": [
        {"name": "requests", "version": "2.19.0",
         "vulns": [{"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"], "aliases": ["CVE-2018-18074"]}]},
        _skipped("local-thing"),
    ]}
    outcome = vuln_audit.classify(report)
    assert outcome.exit_code == 1
    assert "requests 2.19.0: PYSEC-2018-28 (fixed in 2.20.0)" in outcome.message


def test_nothing_audited_is_reported_as_unreachable() -> None:
    outcome = vuln_audit.classify({"dependencies": [_skipped("a"), _skipped("b")], "fixes": []})
    assert outcome.exit_code == 0
    assert outcome.message.startswith(vuln_audit.UNREACHABLE)


def test_clean_audit_passes_and_counts() -> None:
    outcome = vuln_audit.classify({"dependencies": [
        {"name": "a", "version": "1", "vulns": []}, {"name": "b", "version": "2", "vulns": []}, _skipped("c")]})
    assert outcome == vuln_audit.AuditOutcome(0, "no known vulnerabilities in 2 packages; 1 could not be looked up")


def _fake_pip_audit(tmp_path: Path, stdout: str, code: int) -> str:
    script = tmp_path / "pip-audit"
    script.write_text(f"#!/bin/sh\ncat <<'JSON'\n{stdout}\nJSON\necho 'ConnectionError: offline' >&2\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_runner_reads_the_report_and_exit_code(tmp_path: Path) -> None:
    finding = ('{"dependencies": [{"name": "x", "version": "1", '
               '"vulns": [{"id": "GHSA-1", "fix_versions": []}]}], "fixes": []}')
    assert vuln_audit.run_pip_audit(_fake_pip_audit(tmp_path, finding, 1), str(tmp_path)).exit_code == 1


def test_runner_without_a_report_is_unreachable(tmp_path: Path) -> None:
    outcome = vuln_audit.run_pip_audit(_fake_pip_audit(tmp_path, "", 1), str(tmp_path))
    assert outcome.exit_code == 0
    assert vuln_audit.UNREACHABLE in outcome.message and "offline" in outcome.message


def test_missing_pip_audit_is_an_error(capsys) -> None:  # type: ignore[no-untyped-def]
    assert vuln_audit.main(["--pip-audit", "/nonexistent/pip-audit"]) == 2
    assert "not found" in capsys.readouterr().err
