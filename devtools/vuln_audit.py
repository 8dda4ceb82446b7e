"""Vulnerability audit of the project's installed, pinned dependencies with pip-audit.

pip-audit asks PyPI's per-release JSON API for known vulnerabilities. Where that API cannot be
reached (CI here reaches PyPI's package index but not the per-release API), pip-audit reports every
package as "could not be audited" and still exits 0, which would read as a clean bill of health.
This wrapper tells the three outcomes apart: findings fail the run; an audit that checked nothing
prints "skipped: vulnerability database unreachable" and passes; anything else passes and says how
many packages were checked.

    python -m devtools.vuln_audit [--pip-audit PATH] [--path SITE_PACKAGES]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from typing import Any

UNREACHABLE = "skipped: vulnerability database unreachable"


@dataclass(frozen=True)
class AuditOutcome:
    exit_code: int
    message: str


def classify(report: dict[str, Any]) -> AuditOutcome:
    """Turn pip-audit's JSON report into a verdict."""
    dependencies = report.get("dependencies", [])
    findings = [
        f"{dep['name']} {dep.get('version', '?')}: {vuln['id']}"
        + (f" (fixed in {', '.join(vuln['fix_versions'])})" if vuln.get("fix_versions") else "")
        for dep in dependencies
        for vuln in dep.get("vulns", [])
    ]
    if findings:
        return AuditOutcome(1, "known vulnerabilities:\n  " + "\n  ".join(findings))
    audited = [dep for dep in dependencies if "skip_reason" not in dep]
    if not audited:
        return AuditOutcome(0, f"{UNREACHABLE} ({len(dependencies)} packages could not be looked up)")
    skipped = len(dependencies) - len(audited)
    note = f"; {skipped} could not be looked up" if skipped else ""
    return AuditOutcome(0, f"no known vulnerabilities in {len(audited)} packages{note}")


def run_pip_audit(pip_audit: str, site_packages: str) -> AuditOutcome:
    proc = subprocess.run(
        [pip_audit, "--path", site_packages, "--format", "json", "--progress-spinner", "off", "--timeout", "15"],
        capture_output=True, text=True, check=False,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        # No report at all: pip-audit could not talk to its service (DNS, proxy, timeout).
        last_line = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return AuditOutcome(0, f"{UNREACHABLE} (pip-audit exited {proc.returncode}: {last_line})")
    return classify(report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pip-audit", default=".venv-iac/bin/pip-audit", help="pip-audit executable")
    parser.add_argument("--path", default=sysconfig.get_paths()["purelib"],
                        help="site-packages to audit (default: this interpreter's)")
    args = parser.parse_args(argv)
    try:
        outcome = run_pip_audit(args.pip_audit, args.path)
    except FileNotFoundError:
        print(f"pip-audit: not found at {args.pip_audit}; `make check` installs it into .venv-iac", file=sys.stderr)
        return 2
    print(f"pip-audit: {outcome.message}")
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
