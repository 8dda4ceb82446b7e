#!/usr/bin/env bash
# Policy check of infra/ with checkov (its settings and the skipped checks: infra/checkov.yaml; the
# reasons: docs/DEPLOY.md). The Bicep syntax test is tests/infra/test_bicep_syntax.py. No Bicep
# compiler is available here, so nothing in this repository runs `bicep build` or a what-if.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV="${CHECKOV:-.venv-iac/bin/checkov}"
"$CHECKOV" --directory infra --config-file infra/checkov.yaml
