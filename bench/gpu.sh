#!/usr/bin/env bash
# The GPU check (issue 12, item 4): on a machine with one NVIDIA GPU, within 8 minutes, one JSON with
# the CUDA tests (tests/test_cuda.py: bf16 autocast, DDP over NCCL, GPU-decoded batches), ResNet-50
# training images/s at 224 px through ldlpose's loop against a bare channels-last bf16 loop, and
# whether the input pipeline keeps up using all the machine's cores (bench/gpu_check.py does the work);
# then (issue 26, item 5) ldlpose's loop with each of its fast paths (train.accel: channels-last, cuDNN
# autotuning, torch.compile) on and off, side by side. The JSON is rewritten after each variant, so a
# check stopped by the time limit keeps what it measured; --no-compile leaves the compiled variants out.
#
#   bench/gpu.sh [--json gpu_check.json]             # on the GPU machine
#   bench/gpu.sh --dry-run [--json gpu_check.json]   # CPU, tiny sizes, gloo instead of NCCL, no compiling
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${VIRTUAL_ENV:-}" && -f .venv/bin/activate ]]; then
    . .venv/bin/activate
fi
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::DeprecationWarning}"
exec timeout --signal=TERM --kill-after=10 "${GPU_CHECK_TIMEOUT_S:-470}" python bench/gpu_check.py "$@"
