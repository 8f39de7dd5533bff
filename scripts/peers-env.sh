#!/usr/bin/env bash
# Build the peers virtualenv (default .peers/): the libraries robustwatch is measured against,
# side by side, in an environment of their own. They are never runtime dependencies:
# alibi-detect is Business Source Licensed and pins numpy < 2, the main .venv has numpy 2.
#
#   scripts/peers-env.sh [VENV]          # what `make peers` runs
#
# torch is pinned to the CPU build on this machine's disk in every pip command, so that no
# peer's requirements can upgrade it to a multi-GB CUDA build; the last step checks it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${1:-.peers}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PEERS=(
    "numpy<2"
    "torchattacks==3.5.1"
    "adversarial-robustness-toolbox>=1.20,<1.21"
    "alibi-detect[torch]==0.13.0"
    "statsmodels"  # ART's RandomizedSmoothing.certify needs it and does not declare it
    "scikit-learn>=1.4"
    "prometheus-client"  # the agent's drift wiring, built on alibi-detect detectors in a test
    "pytest>=8"
)
PY="$VENV/bin/python"

start=$SECONDS
test -x "$PY" || python3 -m venv "$VENV"
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q "$TORCH_SPEC"
"$PY" -m pip install -q "$TORCH_SPEC" "${PEERS[@]}"
# robustwatch itself, without its dependencies (kafka-python, numpy 2...): the peer tests and
# benchmarks import only scoring/ and detectors/, which need torch, numpy and scipy.
"$PY" -m pip install -q --no-deps -e .
"$PY" - "$TORCH_SPEC" <<'PYCHECK'
import sys

import art
import numpy
import torch
import torchattacks

want = sys.argv[1].partition("==")[2]
if want and torch.__version__.split("+")[0] != want:
    sys.exit(f"peers env: torch {torch.__version__} was installed, not {want}")
if int(numpy.__version__.split(".")[0]) >= 2:
    sys.exit(f"peers env: numpy {numpy.__version__}; alibi-detect needs numpy < 2")
import alibi_detect  # noqa: E402  (after the numpy check, which explains a failure better)

print(
    f"peers env ready: torch {torch.__version__}, numpy {numpy.__version__}, "
    f"torchattacks {torchattacks.__version__}, ART {art.__version__}, "
    f"alibi-detect {alibi_detect.__version__}"
)
PYCHECK
echo "peers env built in $((SECONDS - start)) s"
