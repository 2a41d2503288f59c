"""Run configuration: one dataclass per stage, every field with help text, YAML in and out.

Defaults follow the ARTE paper (design.md §1); where the paper is silent the default is ours and
the help text says so. `assets/configs/demo.yaml` scales everything down for 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from arte_core.errors import ArteError

TECHNIQUES = ("expert_procedure", "common_sense", "task_description", "eliminate_options")


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with help text (shown by `arte config --help-fields` and in the studio forms)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class ElicitConfig:
    """Step 1: the teacher writes draft questions, then one rationale per reasoning technique."""

    n_questions: int = option(250, "Draft questions to keep per task (the paper's m).")
    prompt_format: str = option("chat", "Teacher prompts as 'chat' instructions (instruct teachers, the paper) or a 'completion' pattern to continue (ours: what a very small teacher can follow).")
    questions_per_call: int = option(5, "Questions the generation prompt asks for in one teacher call.")
    question_temperature: float = option(1.0, "Sampling temperature for draft questions.")
    question_max_new_tokens: int = option(768, "Token limit of one question-generation call.")
    max_question_calls: int = option(0, "Stop after this many question calls even if short of n_questions (0 = 4 × n_questions / questions_per_call). Ours: bounds a teacher that writes unparsable output.")
    near_duplicate_threshold: float = option(0.9, "Drop a question whose character-level similarity to a kept one is at least this (ours).")
    techniques: list[str] = option(list(TECHNIQUES), "Reasoning-technique prompts, one rationale each (the paper's n = 4).")
    rationale_temperature: float = option(0.7, "Sampling temperature for draft rationales (ours).")
    rationale_max_new_tokens: int = option(256, "Token limit of one rationale.")
    batch_size: int = option(8, "Prompts generated together.")


@dataclass
class ScoreConfig:
    """Step 2: each (question, rationale) draft is the student's one demo; its accuracy is its score."""

    n_pref: int = option(40, "Preference questions from the task's validation pool (the paper keeps 40).")
    max_new_tokens: int = option(160, "Token limit of one student answer.")
    icl_format: str = option("completion", "'completion' (plain Q:/A: text the student continues) or 'chat' (the demo and question in the chat template). Ours: small students follow the completion format far more often.")
    engine: str = option("fast", "'fast' (shared-prefix KV reuse, refilled batches), 'batched' (padded generate) or 'plain' (one prompt at a time).")
    dtype: str = option("float32", "Student weights for scoring: 'float32' or 'bfloat16'.")
    batch_size: int = option(8, "Answers generated together.")


PAIR_SIGNALS = ("icl", "influence", "both")
PAIR_STYLES = ("arte", "montessori")
PAIR_NEUTRALS = ("auto", "median")


@dataclass
class PairConfig:
    """Step 3: question pairs (top vs bottom quartile) and rationale pairs (best vs worst)."""

    quantile: float = option(0.25, "Share of questions in the top and in the bottom group.")
    n_question_pairs: int = option(50, "Question pairs per task in the 'arte' style (the 'montessori' style keeps every pair).")
    min_margin: float = option(0.0, "A pair needs chosen − rejected score above this; ties are skipped.")
    signal: str = option("icl", "Student preference signal: 'icl' (one-shot accuracy, ARTE), 'influence' (local data influence, Montessori-Instruct) or 'both' (mean of a draft's percentile ranks under the two).")
    style: str = option("arte", "'arte' (top vs bottom quantile questions, best vs worst rationale per question) or 'montessori' (per teacher prompt, every helpful × harmful draft; helpful and harmful as `neutral` says).")
    neutral: str = option("auto", "Montessori style: the score that splits helpful from harmful drafts. 'auto' = 0 for influence (the paper's rule) and the median draft for 'icl' and 'both'; 'median' = the median draft for every signal (use it when nearly every draft lowers the reference loss).")
    step_by_step_prompt: str = option("Let's think step by step.", "The plain prompt that replaces the technique prompt in rationale pairs.")


@dataclass
class AlignConfig:
    """Step 4: DPO of the teacher on the pairs with a LoRA adapter (TRL)."""

    learning_rate: float = option(1e-7, "Peak learning rate (paper 1e-7; tiny CPU models need far more to move at all).")
    beta: float = option(0.1, "DPO beta (ours).")
    batch_size: int = option(16, "Effective batch size (per-step batch × gradient accumulation).")
    per_device_batch_size: int = option(2, "Pairs in one forward pass.")
    epochs: float = option(1.0, "Passes over the pairs.")
    warmup_ratio: float = option(0.1, "Share of steps with linear warm-up.")
    lr_scheduler: str = option("cosine", "Learning-rate schedule after warm-up.")
    lora_r: int = option(16, "LoRA rank (ours).")
    lora_alpha: int = option(32, "LoRA alpha.")
    lora_dropout: float = option(0.05, "LoRA dropout.")
    max_length: int = option(1024, "Longest prompt + completion in tokens; longer pairs are truncated.")
    save_steps: int = option(10, "Checkpoint every this many steps, so a killed run resumes.")


@dataclass
class DistillConfig:
    """Step 5: regenerate data with the aligned teacher and fine-tune the student on it."""

    n_examples: int = option(0, "Examples to regenerate (0 = as many as the original-teacher data).")
    question_temperature: float = option(1.0, "Temperature of regenerated questions.")
    rationale_temperature: float = option(0.0, "Temperature of regenerated rationales (0 = greedy).")
    learning_rate: float = option(2e-5, "SFT peak learning rate.")
    epochs: float = option(1.0, "SFT passes over the data.")
    warmup_ratio: float = option(0.03, "SFT warm-up share.")
    batch_size: int = option(8, "SFT batch size.")
    use_lora: bool = option(False, "Fine-tune a LoRA adapter instead of all weights.")
    lora_r: int = option(16, "LoRA rank when use_lora is on.")
    max_length: int = option(768, "Longest training example in tokens.")


@dataclass
class EvalConfig:
    """Evaluation of the untrained, original-teacher-trained and ARTE-trained students."""

    n_test: int = option(200, "Test questions (disjoint from the preference split).")
    shots: list[int] = option([0, 3], "Numbers of chain-of-thought exemplars in the prompt.")
    max_new_tokens: int = option(160, "Token limit of one answer.")
    batch_size: int = option(8, "Answers generated together.")


@dataclass
class InfluenceConfig:
    """Montessori-Instruct's signal: the reference-loss change after one optimizer step on a draft."""

    mode: str = option("lora", "What the probe step trains: 'lora' (adapters on all linear layers; cheap snapshot, ours) or 'full' (all weights, the paper).")
    learning_rate: float = option(1e-4, "Learning rate of the probe step (and of the warm-up). Ours: 1e-4 suits LoRA; use ~1e-5 for 'full'.")
    optimizer: str = option("adamw", "'adamw' (the HF Trainer's, as in the paper; here without weight decay) or 'sgd' (plain, no momentum).")
    warmup_fraction: float = option(0.0, "Share of the drafts the student is fine-tuned on before probing (0 = no warm-up, ours; the paper warms up). Warm-up drafts are still probed.")
    warmup_steps: int = option(0, "Warm-up optimizer steps at batch 1, cycling over the warm-up drafts (0 = one pass over them).")
    lora_r: int = option(16, "LoRA rank in 'lora' mode (alpha = 2 × r, dropout 0).")
    n_reference: int = option(0, "Reference items: the first N preference items (0 = all; the paper uses 256 reference examples).")
    max_length: int = option(768, "Longest example in tokens; longer ones lose tokens from the start of the prompt, never the completion.")
    reference_batch_size: int = option(8, "Reference items in one forward pass.")
    device: str = option("auto", "Where the probes run: 'auto' (a CUDA GPU when torch sees one, else the CPU), 'cpu' or 'cuda'.")


INFLUENCE_MODES = ("lora", "full")
INFLUENCE_OPTIMIZERS = ("adamw", "sgd")
INFLUENCE_DEVICES = ("auto", "cpu", "cuda")


def check_influence_config(cfg: InfluenceConfig) -> None:
    """Reject values the probe cannot run with, naming the field."""
    if cfg.mode not in INFLUENCE_MODES:
        raise ArteError(f"config field 'influence.mode' is {cfg.mode!r}; choose one of {', '.join(INFLUENCE_MODES)}.")
    if cfg.optimizer not in INFLUENCE_OPTIMIZERS:
        raise ArteError(f"config field 'influence.optimizer' is {cfg.optimizer!r}; choose one of {', '.join(INFLUENCE_OPTIMIZERS)}.")
    if cfg.device not in INFLUENCE_DEVICES:
        raise ArteError(f"config field 'influence.device' is {cfg.device!r}; choose one of {', '.join(INFLUENCE_DEVICES)}.")
    if not 0.0 <= cfg.warmup_fraction <= 1.0:
        raise ArteError(f"config field 'influence.warmup_fraction' must be in [0, 1], got {cfg.warmup_fraction}.")
    if cfg.learning_rate <= 0 or cfg.max_length < 2 or cfg.reference_batch_size < 1:
        raise ArteError("config fields 'influence.learning_rate', 'max_length' and 'reference_batch_size' must be positive.")
    if cfg.n_reference < 0 or cfg.warmup_steps < 0 or cfg.lora_r < 1:
        raise ArteError("config fields 'influence.n_reference' and 'warmup_steps' must be ≥ 0, 'lora_r' ≥ 1.")


@dataclass
class RunConfig:
    """The whole ARTE loop on one task."""

    task: str = option("boolean_expressions", "Task name: built-in, or a file stem in task_dir.")
    task_dir: str | None = option(None, "Folder in the BBH layout (tasks/NAME.json, cot-prompts/NAME.txt); empty for built-in tasks.")
    teacher: str = option("smollm2-135m-instruct", "Teacher model: registry name, local folder or Hub id.")
    student: str = option("smollm2-135m-instruct", "Student model: registry name, local folder or Hub id.")
    backend: str = option("transformers", "Generation backend: 'transformers' (CPU) or 'vllm' (GPU).")
    trust_remote_code: bool = option(False, "Allow model repositories to run their own code.")
    seed: int = option(0, "Seed of splits, sampling and training.")
    run_name: str | None = option(None, "Run name; empty derives one from the task and a hash of this config.")
    runs_dir: str = option("runs", "Folder for adapters, checkpoints and logs of each run.")
    elicit: ElicitConfig = field(default_factory=ElicitConfig, metadata={"help": "Draft elicitation."})
    score: ScoreConfig = field(default_factory=ScoreConfig, metadata={"help": "Preference collection."})
    pairs: PairConfig = field(default_factory=PairConfig, metadata={"help": "Pair building."})
    align: AlignConfig = field(default_factory=AlignConfig, metadata={"help": "Teacher DPO."})
    distill: DistillConfig = field(default_factory=DistillConfig, metadata={"help": "Regeneration and student SFT."})
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"help": "Evaluation."})
    influence: InfluenceConfig = field(default_factory=InfluenceConfig, metadata={"help": "Local data influence (optional signal)."})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def fingerprint(self) -> str:
        """A short hash of what fixes a run's drafts and splits: task, teacher, seed, elicitation and
        split sizes. Students, pair and training settings may differ between calls on one run (a
        second student is scored into the same run); a stage already done is not redone by a
        changed setting — use a new run name for that."""
        identity = {"task": self.task, "task_dir": self.task_dir, "teacher": self.teacher, "seed": self.seed,
                    "elicit": dataclasses.asdict(self.elicit), "n_pref": self.score.n_pref,
                    "n_test": self.eval.n_test}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def resolved_run_name(self) -> str:
        return self.run_name or f"{self.task}-{self.fingerprint()}"


def _check_value(path: str, value: Any, annotation: Any) -> Any:
    """Coerce a YAML value to a field's type, or say which field is wrong."""
    hint = annotation
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        hint = args[0]
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ArteError(f"config field '{path}' must be a list, got {value!r}.")
        (item_type,) = typing.get_args(hint)
        return [_check_value(f"{path}[{i}]", v, item_type) for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ArteError(f"config field '{path}' must be true or false, got {value!r}.")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-7 as a string
        except ValueError:
            pass
    wrong_type = hint in (int, str, float) and not isinstance(value, hint)
    if wrong_type or isinstance(value, bool):  # YAML's true/false must not pass as a number or text
        raise ArteError(f"config field '{path}' must be of type {hint.__name__}, got {value!r}.")
    return value


def _from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ArteError(f"config section '{prefix or 'top level'}' must be a mapping, got {data!r}.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f" in section '{prefix}'" if prefix else ""
        raise ArteError(
            f"unknown config field{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)}{where}; "
            f"known fields: {', '.join(sorted(names))}."
        )
    kwargs = {k: _check_value(f"{prefix}.{k}" if prefix else k, v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


def config_from_dict(data: dict) -> RunConfig:
    config = _from_dict(RunConfig, data or {})
    validate(config)
    return config


def load_config(path: str | Path) -> RunConfig:
    """Read a RunConfig from YAML, naming the file and field on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ArteError(f"config file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ArteError(f"{path} is not valid YAML: {exc}") from None
    try:
        return config_from_dict(data or {})
    except ArteError as exc:
        raise ArteError(f"{path}: {exc}") from None


def validate(config: RunConfig) -> None:
    """Cross-field checks that types alone cannot express."""
    choices = {
        "score.icl_format": (config.score.icl_format, ("completion", "chat")),
        "elicit.prompt_format": (config.elicit.prompt_format, ("completion", "chat")),
        "score.engine": (config.score.engine, ("fast", "batched", "plain")),
        "score.dtype": (config.score.dtype, ("float32", "bfloat16")),
        "pairs.signal": (config.pairs.signal, PAIR_SIGNALS),
        "pairs.style": (config.pairs.style, PAIR_STYLES),
        "pairs.neutral": (config.pairs.neutral, PAIR_NEUTRALS),
        "backend": (config.backend, ("transformers", "vllm")),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ArteError(f"config field '{name}' is {value!r}; choose one of {', '.join(allowed)}.")
    unknown = [t for t in config.elicit.techniques if t not in TECHNIQUES]
    if unknown or not config.elicit.techniques:
        raise ArteError(f"config field 'elicit.techniques' has {unknown or 'no techniques'}; choose from {', '.join(TECHNIQUES)}.")
    positive = {
        "elicit.n_questions": config.elicit.n_questions,
        "elicit.questions_per_call": config.elicit.questions_per_call,
        "score.n_pref": config.score.n_pref,
        "eval.n_test": config.eval.n_test,
    }
    for name, value in positive.items():
        if value < 1:
            raise ArteError(f"config field '{name}' must be at least 1, got {value}.")
    check_influence_config(config.influence)
    if not 0 < config.pairs.quantile <= 0.5:
        raise ArteError(f"config field 'pairs.quantile' must be in (0, 0.5], got {config.pairs.quantile}.")


def field_help(cls: type = RunConfig, prefix: str = "") -> dict[str, str]:
    """Flattened `section.field -> help` for forms and `--help` output."""
    out: dict[str, str] = {}
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            out.update(field_help(hint, f"{name}."))
        else:
            out[name] = f.metadata.get("help", "")
    return out
