#!/usr/bin/env bash
# Installs the comparison baseline's Python packages (bench/baseline/
# requirements.txt, pinned) from PyPI into a venv outside the repository:
# ${FP_BENCH_VENV:-~/.cache/fleetpipeline/bench-venv}. Idempotent: does
# nothing when the venv already holds exactly these requirements.
# Prints the venv's python on the last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${FP_BENCH_VENV:-$HOME/.cache/fleetpipeline/bench-venv}"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$venv/bin/python"
  exit 0
fi
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
echo "$want" >"$stamp"
echo "$venv/bin/python"
