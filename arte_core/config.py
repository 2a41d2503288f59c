"""Run configuration: one dataclass per stage; every field declares its help and its constraints once.

Defaults follow the ARTE paper; where the paper is silent the default is ours and the help text says
so. `assets/configs/demo.yaml` scales everything down for 2 CPU cores. `validate` applies every
field's constraints (choices, bounds, a custom check) to YAML files, command-line overrides and the
studio's form alike; `arte config --help-fields` lists every field with its type, default,
constraints and help.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from arte_core.errors import ArteError

# The one declaration of each set of choices; the fields below reference them, and other modules
# read them from here (or with `field_choices("section.field")`).
TECHNIQUES = ("expert_procedure", "common_sense", "task_description", "eliminate_options")
PROMPT_FORMATS = ("completion", "chat")
ENGINES = ("fast", "batched", "plain")
DTYPES = ("float32", "bfloat16")
BACKENDS = ("transformers", "vllm")
PAIR_SIGNALS = ("icl", "influence", "both")
PAIR_STYLES = ("arte", "montessori")
PAIR_NEUTRALS = ("auto", "median")
INFLUENCE_MODES = ("lora", "full")
INFLUENCE_OPTIMIZERS = ("adamw", "sgd")
INFLUENCE_DEVICES = ("auto", "cpu", "cuda")
# transformers' schedules that need no extra arguments, and optimizers that need no extra packages.
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                 "inverse_sqrt")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adafactor", "sgd", "adagrad", "rmsprop")
SEED_MAX = 2**32 - 1  # numpy's seed range


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Constraint:
    """What a field allows. On a list field the bounds and choices apply to each item."""

    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    check: Callable[[Any], str | None] | None = None  # returns what is allowed when it refuses a value
    check_text: str = ""  # the custom check's rule, for --help-fields
    non_empty: bool = False  # a list or text must not be empty

    def describe(self) -> str:
        """The rule in words: 'at least 1', 'greater than 0 and less than 1', 'one of a, b'."""
        parts = []
        if self.choices is not None:
            parts.append("one of " + ", ".join(str(c) for c in self.choices))
        if self.minimum is not None:
            parts.append(f"{'greater than' if self.exclusive_minimum else 'at least'} {_number(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"{'less than' if self.exclusive_maximum else 'at most'} {_number(self.maximum)}")
        if self.check_text:
            parts.append(self.check_text)
        return " and ".join(parts)

    def problem(self, value: Any) -> str | None:
        """Why one value (one item of a list field) is refused, or None."""
        if self.choices is not None and value not in self.choices:
            return "choose one of " + ", ".join(str(c) for c in self.choices)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                return "it must be a finite number"
            below = self.minimum is not None and (value <= self.minimum if self.exclusive_minimum else value < self.minimum)
            above = self.maximum is not None and (value >= self.maximum if self.exclusive_maximum else value > self.maximum)
            if below or above:
                return "it must be " + self.describe()
        if self.check is not None:
            return self.check(value)
        return None


def option(default: Any, help: str, *, choices: tuple | None = None, minimum: float | None = None,
           maximum: float | None = None, exclusive_minimum: bool = False, exclusive_maximum: bool = False,
           check: Callable[[Any], str | None] | None = None, check_text: str = "", non_empty: bool = False) -> Any:
    """A dataclass field with its help text and constraints (shown by `arte config --help-fields` and
    the studio forms, applied by `validate`). On a list field, bounds and choices apply to each item."""
    rule = Constraint(choices, minimum, maximum, exclusive_minimum, exclusive_maximum, check, check_text, non_empty)
    metadata = {"help": help, "constraint": rule}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type, help: str) -> Any:
    return field(default_factory=cls, metadata={"help": help})


def _distinct(values: list) -> str | None:
    return None if len(set(values)) == len(values) else "each item may appear once"


def _text(value: Any) -> str | None:
    return None if value is None or str(value).strip() else "it must not be empty"


def _run_name(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or value in (".", "..") or any(c in value for c in "/\\"):
        return "it must be a plain folder name (no '/', '\\', '.' or '..'), or empty to derive one"
    return None


# Common rules.
POSITIVE_INT = dict(minimum=1)
TEMPERATURE = dict(minimum=0.0)
LEARNING_RATE = dict(minimum=0.0, exclusive_minimum=True, maximum=1.0)
EPOCHS = dict(minimum=0.0, exclusive_minimum=True)
RATIO = dict(minimum=0.0, maximum=1.0, exclusive_maximum=True)  # [0, 1)
TOKENS = dict(minimum=1)
TRAIN_LENGTH = dict(minimum=2)  # at least a prompt token and a completion token


@dataclass
class ElicitConfig:
    """Step 1: the teacher writes draft questions, then one rationale per reasoning technique."""

    n_questions: int = option(250, "Draft questions to keep per task (the paper's m).", **POSITIVE_INT)
    prompt_format: str = option("chat", "Teacher prompts as 'chat' instructions (instruct teachers, the paper) or a 'completion' pattern to continue (ours: what a very small teacher can follow).", choices=PROMPT_FORMATS)
    questions_per_call: int = option(5, "Questions the generation prompt asks for in one teacher call.", **POSITIVE_INT)
    question_temperature: float = option(1.0, "Sampling temperature for draft questions (0 = greedy).", **TEMPERATURE)
    question_max_new_tokens: int = option(768, "Token limit of one question-generation call.", **TOKENS)
    max_question_calls: int = option(0, "Stop after this many question calls even if short of n_questions (0 = 4 × n_questions / questions_per_call). Ours: bounds a teacher that writes unparsable output.", minimum=0)
    near_duplicate_threshold: float = option(0.9, "Drop a question whose character-level similarity to a kept one is at least this (ours).", minimum=0.0, exclusive_minimum=True, maximum=1.0)
    techniques: list[str] = option(list(TECHNIQUES), "Reasoning-technique prompts, one rationale each (the paper's n = 4).", choices=TECHNIQUES, non_empty=True, check=_distinct, check_text="each once")
    rationale_temperature: float = option(0.7, "Sampling temperature for draft rationales (ours; 0 = greedy).", **TEMPERATURE)
    rationale_max_new_tokens: int = option(256, "Token limit of one rationale.", **TOKENS)
    batch_size: int = option(8, "Prompts generated together.", **POSITIVE_INT)


@dataclass
class ScoreConfig:
    """Step 2: each (question, rationale) draft is the student's one demo; its accuracy is its score."""

    n_pref: int = option(40, "Preference questions from the task's validation pool (the paper keeps 40).", **POSITIVE_INT)
    max_new_tokens: int = option(160, "Token limit of one student answer.", **TOKENS)
    icl_format: str = option("completion", "'completion' (plain Q:/A: text the student continues) or 'chat' (the demo and question in the chat template). Ours: small students follow the completion format far more often.", choices=PROMPT_FORMATS)
    engine: str = option("fast", "'fast' (shared-prefix KV reuse, refilled batches), 'batched' (padded generate) or 'plain' (one prompt at a time).", choices=ENGINES)
    dtype: str = option("float32", "Student weights for scoring: 'float32' or 'bfloat16'.", choices=DTYPES)
    batch_size: int = option(8, "Answers generated together by the 'batched' and 'plain' engines; the 'fast' engine decodes up to 256 answers together whatever this says.", **POSITIVE_INT)


@dataclass
class PairConfig:
    """Step 3: question pairs (top vs bottom quartile) and rationale pairs (best vs worst)."""

    quantile: float = option(0.25, "Share of questions in the top and in the bottom group.", minimum=0.0, exclusive_minimum=True, maximum=0.5)
    n_question_pairs: int = option(50, "Question pairs per task in the 'arte' style (the 'montessori' style keeps every pair).", **POSITIVE_INT)
    min_margin: float = option(0.0, "A pair needs chosen − rejected score above this; ties are skipped.", minimum=0.0)
    signal: str = option("icl", "Student preference signal: 'icl' (one-shot accuracy, ARTE), 'influence' (local data influence, Montessori-Instruct) or 'both' (mean of a draft's percentile ranks under the two).", choices=PAIR_SIGNALS)
    style: str = option("arte", "'arte' (top vs bottom quantile questions, best vs worst rationale per question) or 'montessori' (per teacher prompt, every helpful × harmful draft; helpful and harmful as `neutral` says).", choices=PAIR_STYLES)
    neutral: str = option("auto", "Montessori style: the score that splits helpful from harmful drafts. 'auto' = 0 for influence (the paper's rule) and the median draft for 'icl' and 'both'; 'median' = the median draft for every signal (use it when nearly every draft lowers the reference loss).", choices=PAIR_NEUTRALS)
    step_by_step_prompt: str = option("Let's think step by step.", "The plain prompt that replaces the technique prompt in rationale pairs.", check=_text, check_text="not empty")


@dataclass
class AlignConfig:
    """Step 4: DPO of the teacher on the pairs with a LoRA adapter (TRL)."""

    learning_rate: float = option(1e-7, "Peak learning rate (paper 1e-7; tiny CPU models need far more to move at all).", **LEARNING_RATE)
    beta: float = option(0.1, "DPO beta (ours).", minimum=0.0, exclusive_minimum=True)
    batch_size: int = option(16, "Effective batch size (per-step batch × gradient accumulation).", **POSITIVE_INT)
    per_device_batch_size: int = option(2, "Pairs in one forward pass (at most batch_size).", **POSITIVE_INT)
    epochs: float = option(1.0, "Passes over the pairs.", **EPOCHS)
    warmup_ratio: float = option(0.1, "Share of steps with linear warm-up.", **RATIO)
    lr_scheduler: str = option("cosine", "Learning-rate schedule after warm-up (transformers' names).", choices=LR_SCHEDULERS)
    optim: str = option("adamw_torch_fused", "Optimizer (transformers' names; TRL's default).", choices=OPTIMIZERS)
    lora_r: int = option(16, "LoRA rank (ours).", **POSITIVE_INT)
    lora_alpha: int = option(32, "LoRA alpha.", **POSITIVE_INT)
    lora_dropout: float = option(0.05, "LoRA dropout.", **RATIO)
    max_length: int = option(1024, "Longest prompt + completion in tokens; longer pairs are truncated.", **TRAIN_LENGTH)
    save_steps: int = option(10, "Checkpoint every this many steps, so a killed run resumes.", **POSITIVE_INT)


@dataclass
class RegenerateConfig:
    """Step 5a: the aligned teacher regenerates questions and plain step-by-step rationales."""

    n_examples: int = option(0, "Examples to regenerate (0 = as many as the original-teacher data).", minimum=0)
    question_temperature: float = option(1.0, "Temperature of regenerated questions (0 = greedy).", **TEMPERATURE)
    rationale_temperature: float = option(0.0, "Temperature of regenerated rationales (0 = greedy).", **TEMPERATURE)


@dataclass
class DistillConfig:
    """Step 5b: fine-tune the student on the original-teacher data and on the regenerated data (TRL SFT)."""

    learning_rate: float = option(2e-5, "SFT peak learning rate.", **LEARNING_RATE)
    epochs: float = option(1.0, "SFT passes over the data.", **EPOCHS)
    warmup_ratio: float = option(0.03, "SFT warm-up share.", **RATIO)
    lr_scheduler: str = option("cosine", "Learning-rate schedule after warm-up (transformers' names).", choices=LR_SCHEDULERS)
    optim: str = option("adamw_torch", "Optimizer (transformers' names).", choices=OPTIMIZERS)
    batch_size: int = option(8, "SFT batch size (per-step batch × gradient accumulation).", **POSITIVE_INT)
    per_device_batch_size: int = option(4, "Examples in one forward pass (at most batch_size).", **POSITIVE_INT)
    use_lora: bool = option(False, "Fine-tune a LoRA adapter instead of all weights.")
    lora_r: int = option(16, "LoRA rank when use_lora is on.", **POSITIVE_INT)
    lora_alpha: int = option(0, "LoRA alpha when use_lora is on (0 = 2 × lora_r).", minimum=0)
    lora_dropout: float = option(0.0, "LoRA dropout when use_lora is on.", **RATIO)
    max_length: int = option(768, "Longest training example in tokens.", **TRAIN_LENGTH)
    save_steps: int = option(50, "Checkpoint every this many steps, so a killed run resumes.", **POSITIVE_INT)


@dataclass
class EvalConfig:
    """Evaluation of the untrained, original-teacher-trained and ARTE-trained students."""

    n_test: int = option(200, "Test questions (disjoint from the preference split).", **POSITIVE_INT)
    shots: list[int] = option([0, 3], "Numbers of chain-of-thought exemplars in the prompt (up to the task's exemplars).", minimum=0, non_empty=True, check=_distinct, check_text="each once")
    max_new_tokens: int = option(160, "Token limit of one answer.", **TOKENS)
    icl_format: str = option("completion", "'completion' (plain Q:/A: text the student continues) or 'chat' (the prompt in the chat template).", choices=PROMPT_FORMATS)
    engine: str = option("fast", "'fast' (shared-prefix KV reuse, refilled batches), 'batched' (padded generate) or 'plain' (one prompt at a time).", choices=ENGINES)
    dtype: str = option("float32", "Student weights for evaluation: 'float32' or 'bfloat16'.", choices=DTYPES)
    batch_size: int = option(8, "Answers generated together by the 'batched' and 'plain' engines; the 'fast' engine decodes up to 256 answers together whatever this says.", **POSITIVE_INT)


@dataclass
class InfluenceConfig:
    """Montessori-Instruct's signal: the reference-loss change after one optimizer step on a draft."""

    mode: str = option("lora", "What the probe step trains: 'lora' (adapters on all linear layers; cheap snapshot, ours) or 'full' (all weights, the paper).", choices=INFLUENCE_MODES)
    learning_rate: float = option(1e-4, "Learning rate of the probe step (and of the warm-up). Ours: 1e-4 suits LoRA; use ~1e-5 for 'full'.", **LEARNING_RATE)
    optimizer: str = option("adamw", "'adamw' (the HF Trainer's, as in the paper; here without weight decay) or 'sgd' (plain, no momentum).", choices=INFLUENCE_OPTIMIZERS)
    warmup_fraction: float = option(0.0, "Share of the drafts the student is fine-tuned on before probing (0 = no warm-up, ours; the paper warms up). Warm-up drafts are still probed.", minimum=0.0, maximum=1.0)
    warmup_steps: int = option(0, "Warm-up optimizer steps at batch 1, cycling over the warm-up drafts (0 = one pass over them).", minimum=0)
    lora_r: int = option(16, "LoRA rank in 'lora' mode (dropout 0).", **POSITIVE_INT)
    lora_alpha: int = option(0, "LoRA alpha in 'lora' mode (0 = 2 × lora_r).", minimum=0)
    n_reference: int = option(0, "Reference items: the first N preference items (0 = all; the paper uses 256 reference examples).", minimum=0)
    max_length: int = option(768, "Longest example in tokens; longer ones lose tokens from the start of the prompt, never the completion.", **TRAIN_LENGTH)
    reference_batch_size: int = option(8, "Reference items in one forward pass.", **POSITIVE_INT)
    device: str = option("auto", "Where the probes run: 'auto' (a CUDA GPU when torch sees one, else the CPU), 'cpu' or 'cuda'.", choices=INFLUENCE_DEVICES)


@dataclass
class RunConfig:
    """The whole ARTE loop on one task."""

    task: str = option("boolean_expressions", "Task name: built-in, or a file stem in task_dir.", check=_text, check_text="not empty")
    task_dir: str | None = option(None, "Folder in the BBH layout (tasks/NAME.json, cot-prompts/NAME.txt); empty for built-in tasks.")
    teacher: str = option("smollm2-135m-instruct", "Teacher model: registry name, local folder or Hub id.", check=_text, check_text="not empty")
    student: str = option("smollm2-135m-instruct", "Student model: registry name, local folder or Hub id.", check=_text, check_text="not empty")
    backend: str = option("transformers", "Generation backend: 'transformers' (CPU) or 'vllm' (GPU).", choices=BACKENDS)
    trust_remote_code: bool = option(False, "Allow model repositories to run their own code.")
    seed: int = option(0, "Seed of splits, sampling and training.", minimum=0, maximum=SEED_MAX)
    run_name: str | None = option(None, "Run name; empty derives one from the task and a hash of this config.", check=_run_name, check_text="a plain folder name")
    runs_dir: str = option("runs", "Folder for adapters, checkpoints and logs of each run.", check=_text, check_text="not empty")
    elicit: ElicitConfig = section(ElicitConfig, "Draft elicitation.")
    score: ScoreConfig = section(ScoreConfig, "Preference collection.")
    pairs: PairConfig = section(PairConfig, "Pair building.")
    align: AlignConfig = section(AlignConfig, "Teacher DPO.")
    regenerate: RegenerateConfig = section(RegenerateConfig, "Regeneration with the aligned teacher.")
    distill: DistillConfig = section(DistillConfig, "Student SFT.")
    eval: EvalConfig = section(EvalConfig, "Evaluation.")
    influence: InfluenceConfig = section(InfluenceConfig, "Local data influence (optional signal).")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def fingerprint(self) -> str:
        """A short hash of what fixes a run's drafts and splits: task, teacher, seed, elicitation and
        split sizes. Students, pair and training settings may differ between calls on one run (a
        second student is scored into the same run); a stage already done is not redone by a
        changed setting — use a new run name for that. Stored run ids depend on this hash: a new
        `elicit` field changes it."""
        identity = {"task": self.task, "task_dir": self.task_dir, "teacher": self.teacher, "seed": self.seed,
                    "elicit": dataclasses.asdict(self.elicit), "n_pref": self.score.n_pref,
                    "n_test": self.eval.n_test}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def resolved_run_name(self) -> str:
        return self.run_name or f"{self.task}-{self.fingerprint()}"


# Fields that moved between sections: old YAML files still load, into the new place.
MOVED_FIELDS = {
    "distill.n_examples": "regenerate.n_examples",
    "distill.question_temperature": "regenerate.question_temperature",
    "distill.rationale_temperature": "regenerate.rationale_temperature",
}


def upgrade_dict(data: dict) -> dict:
    """An old config mapping in today's layout (fields in MOVED_FIELDS go to their new section)."""
    if not isinstance(data, dict):
        return data
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for old, new in MOVED_FIELDS.items():
        old_section, name = old.split(".")
        new_section, new_name = new.split(".")
        source = data.get(old_section)
        if not isinstance(source, dict) or name not in source:
            continue
        value = source.pop(name)
        target = data.setdefault(new_section, {})
        if not isinstance(target, dict):
            continue  # _from_dict names the malformed section
        if new_name in target and target[new_name] != value:
            raise ArteError(f"config fields '{old}' (its old place) and '{new}' disagree ({value!r} vs "
                            f"{target[new_name]!r}); keep only '{new}'.")
        target[new_name] = value
    return data


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
    """A validated RunConfig from a mapping (parsed YAML, the studio's form, command-line values);
    old layouts are upgraded first. Raises ArteError naming the field, its value and what is allowed."""
    config = _from_dict(RunConfig, upgrade_dict(data or {}))
    validate(config)
    return config


def config_from_yaml(text: str, source: str = "config") -> RunConfig:
    """A validated RunConfig from YAML text (the studio's Runs form); errors name `source`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ArteError(f"{source} is not valid YAML: {exc}") from None
    try:
        return config_from_dict(data or {})
    except ArteError as exc:
        raise ArteError(f"{source}: {exc}") from None


def load_config(path: str | Path) -> RunConfig:
    """Read a RunConfig from YAML, naming the file and field on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ArteError(f"config file {path} does not exist.")
    return config_from_yaml(path.read_text(encoding="utf-8"), str(path))


def demo_config_path() -> Path:
    """The demo config, shipped at the top of the repository (`assets/configs/demo.yaml`)."""
    return Path(__file__).resolve().parents[1] / "assets" / "configs" / "demo.yaml"


@dataclass(frozen=True)
class FieldSpec:
    """One leaf field of RunConfig: its dotted path, type, default, constraint and help."""

    path: str
    type: Any
    default: Any
    constraint: Constraint
    help: str

    @property
    def type_name(self) -> str:
        return _type_name(self.type)

    @property
    def is_number(self) -> bool:
        """int or float (a list of them counts: its items are bounded)."""
        hint = self.type
        if typing.get_origin(hint) is list:
            (hint,) = typing.get_args(hint)
        return hint in (int, float)


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return f"{_type_name(args[0])} or empty"
    if origin is list:
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint))


def field_specs(cls: type = RunConfig, prefix: str = "") -> list[FieldSpec]:
    """Every leaf field, in declaration order."""
    out: list[FieldSpec] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            out.extend(field_specs(hint, f"{prefix}{f.name}."))
            continue
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        out.append(FieldSpec(f"{prefix}{f.name}", hint, default, f.metadata.get("constraint", Constraint()),
                             f.metadata.get("help", "")))
    return out


def _spec(path: str) -> FieldSpec:
    for spec in field_specs():
        if spec.path == path:
            return spec
    raise KeyError(path)


def field_choices(path: str) -> tuple:
    """The allowed values of a choice field, e.g. `field_choices("pairs.signal")`."""
    choices = _spec(path).constraint.choices
    if choices is None:
        raise KeyError(f"{path} has no choices")
    return choices


def get_field(config: RunConfig, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def check_field(path: str, value: Any) -> None:
    """Refuse a value of one field (already of the field's type) that breaks its constraint."""
    spec = _spec(path)
    _check_spec(spec, value)


def _check_spec(spec: FieldSpec, value: Any) -> None:
    rule = spec.constraint
    if value is None:
        return
    if isinstance(value, list):
        if rule.non_empty and not value:
            raise ArteError(f"config field '{spec.path}' is empty; give at least one item"
                            + (f" ({rule.describe()})." if rule.describe() else "."))
        item_rule = dataclasses.replace(rule, check=None, check_text="")
        for item in value:
            problem = item_rule.problem(item)
            if problem:
                raise ArteError(f"config field '{spec.path}' has {_shown(item)}; for each item {problem}.")
        problem = rule.check(value) if rule.check else None
        if problem:
            raise ArteError(f"config field '{spec.path}' is {value}; {problem}.")
        return
    problem = rule.problem(value)
    if problem:
        raise ArteError(f"config field '{spec.path}' is {_shown(value)}; {problem}.")


def check_section(name: str, section: Any) -> None:
    """Check the fields of one section object (e.g. an InfluenceConfig built in code) like `validate`."""
    for spec in field_specs():
        if spec.path.startswith(name + "."):
            value = getattr(section, spec.path.split(".", 1)[1])
            _check_value(spec.path, value, spec.type)
            _check_spec(spec, value)


def validate(config: RunConfig) -> None:
    """Check every field of every section against its type and its declared constraint, then the few
    rules that tie fields together. Raises ArteError naming the field, its value and what is allowed."""
    if not isinstance(config, RunConfig):
        raise ArteError(f"expected a RunConfig, got {type(config).__name__}.")
    for spec in field_specs():
        value = get_field(config, spec.path)
        _check_value(spec.path, value, spec.type)  # a value set in code must still have the field's type
        _check_spec(spec, value)
    # No rule ties two fields together today: a batch smaller than its per-device batch trains at the
    # smaller of the two (training.common_args).


def field_help(cls: type = RunConfig, prefix: str = "") -> dict[str, str]:
    """Flattened `section.field -> help` for forms and `--help` output."""
    return {spec.path: spec.help for spec in field_specs(cls, prefix)}


def help_fields_text() -> str:
    """Every field with its type, default, constraint and help (`arte config --help-fields`)."""
    lines = []
    section = None
    for spec in field_specs():
        head = spec.path.split(".")[0] if "." in spec.path else ""
        if head != section:
            section = head
            lines.append(f"\n[{head}]" if head else "[top level]")
        default = "empty" if spec.default is None else json.dumps(spec.default)
        allowed = spec.constraint.describe()
        lines.append(f"  {spec.path}  ({spec.type_name}; default {default}"
                     + (f"; {'each item ' if typing.get_origin(spec.type) is list else ''}{allowed}" if allowed else "")
                     + ")")
        lines.append(f"      {spec.help}")
    return "\n".join(lines).lstrip("\n")
