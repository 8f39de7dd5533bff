#!/usr/bin/env bash
# The GPU half of the attack benchmark and the CUDA-only tests, on a lent device machine.
#
# That machine reaches no package registry, and its image already holds CUDA PyTorch, numpy,
# scipy, scikit-learn, statsmodels, tqdm and pytest; only the two peers robustwatch is timed
# against (pure-Python wheels) must travel with the working tree. In two steps:
#
#   scripts/gpu-bench.sh fetch            # here, with PyPI: the wheels into .device/wheels/
#   scripts/gpu-bench.sh run [ARGS...]    # there, with .device carried: install them beside
#                                         # the image's torch, run the CUDA tests, then
#                                         # benchmarks/attacks.py --device cuda ARGS...
#
# With the device tool: run(command="bash scripts/gpu-bench.sh run", carry=[".device"]).
# The same peer versions as scripts/peers-env.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=.device/wheels
PEERS=("torchattacks==3.5.1" "adversarial-robustness-toolbox>=1.20,<1.21")

case "${1:-}" in
fetch)
    mkdir -p "$WHEELS"
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" "${PEERS[@]}"
    ls -l "$WHEELS"
    ;;
run)
    shift
    site=.device/site
    python3 -m pip install -q --upgrade --no-deps --no-index --target "$site" "$WHEELS"/*.whl
    export PYTHONPATH="$PWD/$site:$PWD"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 -c 'import torch, art, torchattacks; print("torch", torch.__version__,
        "| CUDA", torch.cuda.is_available(), "| ART", art.__version__,
        "| torchattacks", torchattacks.__version__)'
    # the tests that skip without CUDA (tests/conftest.py, which starts Kafka, is not needed)
    python3 -m pytest -q -p no:cacheprovider --confcutdir=tests/detectors \
        tests/detectors/drift/test_mmd.py tests/detectors/drift/test_lsdd.py -k cuda
    python3 benchmarks/attacks.py --device cuda "$@"
    ;;
*)
    echo "usage: $0 fetch | run [benchmarks/attacks.py options]" >&2
    exit 2
    ;;
esac
