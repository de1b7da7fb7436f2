#!/usr/bin/env bash
# Profile the web server (granian and its worker processes) with py-spy while one scenario runs.
#
#   bench/profile.sh <scenario> [bench/run.py options, e.g. --quick or --profile-format speedscope]
#
# Writes bench/results/profile-<scenario>-<date>-<sha>.svg (a flame graph; open it in a browser)
# or .speedscope.json (--profile-format speedscope; open it at speedscope's web app or with
# `npx speedscope`). Everything else is as in `make bench --only <scenario>`.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: bench/profile.sh <scenario> [--quick] [--profile-format speedscope]}
shift
if [ ! -x .venv/bin/py-spy ]; then
  echo "py-spy is missing: .venv/bin/pip install -r requirements.txt" >&2
  exit 2
fi
exec scripts/with-services .venv/bin/python bench/run.py --only "$scenario" --profile "$scenario" "$@"
