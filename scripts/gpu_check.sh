#!/usr/bin/env bash
# The GPU tier (tests/test_gpu_qlora.py, `pytest -m gpu`) on a lent CUDA machine that has torch, transformers, peft,
# accelerate and pytest but no network: the wheels it lacks travel in .whl/qlora/ (bitsandbytes 0.50.2 and
# pydantic, which `import finetune` needs; 44 MiB, fetched with `pip download --no-deps --only-binary=:all:
# --python-version 3.12 ...`, see the lead's notes). trl and unsloth do not fit the transfer limit (trl needs
# datasets and pyarrow, 46 MiB more; unsloth's wheel alone is 27 MiB), so their one-step tests skip there with the
# reason; on a machine with `pip install -e '.[gpu,dev]'` all five run.
# Output: $OUT/gpu.log (the pytest run, with nvidia-smi and the versions first).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/qlora/*.whl && export PYTHONPATH=/tmp/site:$PWD
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TUTOR_CACHE=/tmp/tutor-cache
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c 'import sys, torch, transformers, peft, bitsandbytes as b; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "peft", peft.__version__, "bitsandbytes", b.__version__)'
    timeout 300 python3 -m pytest -m gpu tests/test_gpu_qlora.py -q -rs -p no:cacheprovider --durations=10 -W ignore::UserWarning
    echo "pytest exit status $?"
} > "$OUT/gpu.log" 2>&1
status=$(tail -1 "$OUT/gpu.log" | awk '{print $NF}')
tail -40 "$OUT/gpu.log"
exit "${status:-1}"
