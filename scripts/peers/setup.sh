#!/usr/bin/env bash
# Creates the peers' Python environment at .venv-peers/ (repo root): numpy and PyTorch (CPU use).
#   scripts/peers/setup.sh           idempotent: an environment that already imports both is kept
#   PYTHON=python3.12 scripts/peers/setup.sh   another interpreter (default: python3)
# PyTorch comes from its CPU-only wheel index when that is reachable (a ~200 MB wheel); otherwise
# from the default package index, whose Linux wheel is the CUDA build (a few GB with its NVIDIA
# dependencies, run on the CPU all the same).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-peers
py=${PYTHON:-python3}

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import numpy, torch" 2>/dev/null; then
  echo "setup: $venv is ready ($("$venv/bin/python" -c 'import numpy, torch; print("numpy", numpy.__version__, "torch", torch.__version__)'))"
  exit 0
fi

command -v "$py" >/dev/null || { echo "setup: $py not found (set PYTHON=...)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $("$py" --version 2>&1)"
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --upgrade pip >/dev/null

"${pip[@]}" install numpy matplotlib

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup: trying the PyTorch CPU wheel index"
  if ! "${pip[@]}" install --retries 1 --timeout 20 torch --index-url https://download.pytorch.org/whl/cpu; then
    echo "setup: CPU wheel index unreachable; installing torch from the default index"
    "${pip[@]}" install torch
  fi
fi

"$venv/bin/python" -c 'import numpy, torch; print("setup: ready: numpy", numpy.__version__, "torch", torch.__version__, "threads", torch.get_num_threads())'
