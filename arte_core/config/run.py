"""The run's configuration: one dataclass per stage, every field with its help and constraints.

Defaults follow the ARTE paper; where the paper is silent the default is ours and the help text says
so. `assets/configs/demo.yaml` scales everything down for 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml

from arte_core.config.fields import option, section

# The one declaration of each set of choices; the fields below reference them, and other modules
# read them from here (or with `field_choices("section.field")`).
TECHNIQUES = ("expert_procedure", "common_sense", "task_description", "eliminate_options")
PROMPT_FORMATS = ("completion", "chat")
QUESTION_SOURCES = ("teacher", "pool")
ENGINES = ("fast", "batched", "plain")
DTYPES = ("float32", "bfloat16")
BACKENDS = ("transformers", "vllm")
PAIR_SIGNALS = ("icl", "influence", "both")
PAIR_STYLES = ("arte", "montessori")
PAIR_NEUTRALS = ("auto", "median")
PAIR_SCORES = ("balanced_accuracy", "accuracy", "answer_logprob")
SCORE_METRICS = ("accuracy", "answer_logprob")
SELECTIONS = ("balanced", "random", "irt")
INFLUENCE_MODES = ("lora", "full")
INFLUENCE_OPTIMIZERS = ("adamw", "sgd")
INFLUENCE_DEVICES = ("auto", "cpu", "cuda")
# transformers' schedules that need no extra arguments, and optimizers that need no extra packages.
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                 "inverse_sqrt")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adafactor", "sgd", "adagrad", "rmsprop")
SEED_MAX = 2**32 - 1  # numpy's seed range


def _distinct(values: list) -> str | None:
    return None if len(set(values)) == len(values) else "each item may appear once"


def _arms(values: list) -> str | None:
    return _distinct(values) or (None if "arte" in values else "the arms must include 'arte'")


# The students distill can train: 'original' (the unaligned teacher's regenerated data, the paper's baseline),
# 'arte' (the aligned teacher's) and 'best_drafts' (the best-scored draft per question: a baseline the student chose).
DISTILL_ARMS = ("original", "arte", "best_drafts")


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
# A student's answer budget: 0 derives it from the task (prompts.answer_budget); the seed rationales
# show how long a worked answer is, and a fixed number either cuts chains off or wastes decoding.
ANSWER_TOKENS = dict(minimum=0)
TRAIN_LENGTH = dict(minimum=2)  # at least a prompt token and a completion token


@dataclass
class ElicitConfig:
    """Step 1: the teacher writes draft questions, then one rationale per reasoning technique."""

    n_questions: int = option(250, "Draft questions to keep per task (the paper's m).", **POSITIVE_INT)
    question_source: str = option("teacher", "Where draft questions come from: 'teacher' (the teacher writes them, the paper) or 'pool' (ours: labelled questions of the task's pool left out of the preference and test splits; the teacher writes only rationales, so the rationale half of ARTE works with a teacher that cannot write the task's questions).", choices=QUESTION_SOURCES)
    prompt_format: str = option("chat", "Teacher prompts as 'chat' instructions (instruct teachers, the paper) or a 'completion' pattern to continue (ours: what a very small teacher can follow).", choices=PROMPT_FORMATS)
    questions_per_call: int = option(5, "Questions the generation prompt asks for in one teacher call.", **POSITIVE_INT)
    question_temperature: float = option(1.0, "Sampling temperature for draft questions (0 = greedy).", **TEMPERATURE)
    question_max_new_tokens: int = option(768, "Token limit of one question-generation call.", **TOKENS)
    max_question_calls: int = option(0, "Stop after this many question calls even if short of n_questions (0 = 4 × n_questions / questions_per_call). Ours: bounds a teacher that writes unparsable output.", minimum=0)
    max_unparsed_calls: int = option(3, "Give up after this many teacher calls in a row that keep no question, while none is kept yet (ours: a teacher that cannot write the task's questions fails in seconds, not minutes). Not part of the run's identity: raise it and rerun to resume.", minimum=1, maximum=1000)
    near_duplicate_threshold: float = option(0.9, "Drop a question whose character-level similarity to a kept one is at least this (ours).", minimum=0.0, exclusive_minimum=True, maximum=1.0)
    techniques: list[str] = option(list(TECHNIQUES), "Reasoning-technique prompts, one rationale each (the paper's n = 4).", choices=TECHNIQUES, non_empty=True, check=_distinct, check_text="each once")
    rationale_temperature: float = option(0.7, "Sampling temperature for draft rationales (ours; 0 = greedy).", **TEMPERATURE)
    rationale_max_new_tokens: int = option(256, "Token limit of one rationale.", **TOKENS)
    batch_size: int = option(8, "Prompts generated together.", **POSITIVE_INT)


@dataclass
class ScoreConfig:
    """Step 2: each (question, rationale) draft is the student's one demo; its accuracy is its score."""

    n_pref: int = option(40, "Preference questions from the task's validation pool (the paper keeps 40).", **POSITIVE_INT)
    max_new_tokens: int = option(0, "Token limit of one student answer (0 = from the task: its longest seed rationale with its answer, in the student's tokens, × 1.5). An answer that hits the limit is read only if it already stated its answer.", **ANSWER_TOKENS)
    icl_format: str = option("completion", "'completion' (plain Q:/A: text the student continues) or 'chat' (the demo and question in the chat template). Ours: small students follow the completion format far more often.", choices=PROMPT_FORMATS)
    engine: str = option("fast", "'fast' (shared-prefix KV reuse, refilled batches), 'batched' (padded generate) or 'plain' (one prompt at a time).", choices=ENGINES)
    dtype: str = option("float32", "Student weights for scoring: 'float32' or 'bfloat16'.", choices=DTYPES)
    batch_size: int = option(8, "Answers generated together by the 'batched' and 'plain' engines; the 'fast' engine decodes up to 256 answers together whatever this says.", **POSITIVE_INT)
    selection: str = option("balanced", "How the n_pref preference items are chosen: 'balanced' (a seeded draw stratified by label, equal shares within one item; ours), 'random' (a plain seeded draw) or 'irt' (the paper: a pilot of drafts answers n_candidates items, a 2-parameter IRT model is fitted over drafts × items, and the n_pref items with the most information over the pilot drafts' abilities are kept).", choices=SELECTIONS)
    n_candidates: int = option(0, "'irt' selection: candidate items the pilot answers (0 = 4 × n_pref; ours). Must exceed n_pref.", minimum=0)
    n_pilot_drafts: int = option(100, "'irt' selection: drafts in the pilot, drawn with the run's seed (ours: 100 pilot drafts recover 2PL parameters far better than 40 on simulated data, and add 100 × (n_candidates − n_pref) answers to the stage). Fewer drafts than this: all of them.", minimum=2)
    metric: str = option("accuracy", "What the score stage measures per preference item: 'accuracy' (the student's generated answer is right, the paper) or 'answer_logprob' (ours: that too, plus the student's teacher-forced log-probability of the item's target after the one-shot prompt and the cue ' So the answer is', a continuous per-item score; costs one forward pass per item; a run already scored gets only the log-probabilities). Rank pairs on it with pairs.score: answer_logprob.", choices=SCORE_METRICS)


def candidate_count(score: ScoreConfig) -> int:
    """The candidate pool of an 'irt' selection (n_candidates, or 4 × n_pref for 0)."""
    return score.n_candidates or 4 * score.n_pref


@dataclass
class PairConfig:
    """Step 3: question pairs (top vs bottom quartile) and rationale pairs (best vs worst)."""

    quantile: float = option(0.25, "Share of questions in the top and in the bottom group.", minimum=0.0, exclusive_minimum=True, maximum=0.5)
    n_question_pairs: int = option(50, "Question pairs per task in the 'arte' style (the 'montessori' style keeps every pair).", **POSITIVE_INT)
    min_margin: float = option(0.0, "A pair needs chosen − rejected score above this; ties are skipped.", minimum=0.0)
    signal: str = option("icl", "Student preference signal: 'icl' (one-shot accuracy, ARTE), 'influence' (local data influence, Montessori-Instruct) or 'both' (mean of a draft's percentile ranks under the two).", choices=PAIR_SIGNALS)
    style: str = option("arte", "'arte' (top vs bottom quantile questions, best vs worst rationale per question) or 'montessori' (per teacher prompt, every helpful × harmful draft; helpful and harmful as `neutral` says).", choices=PAIR_STYLES)
    score: str = option("balanced_accuracy", "ICL score the 'icl' and 'both' signals rank drafts on: 'balanced_accuracy' (the mean recall per label over the labels of the preference set, ours: a student that repeats the demo's own answer scores 0.5 on a two-label task, whatever the labels' shares) 'accuracy' (the share correct, the paper) or 'answer_logprob' (the mean log-probability of the targets, scored with score.metric: answer_logprob; its pairs are tested by a Wilcoxon signed-rank test over items). Tasks with open answers (integers, free text) always rank on accuracy.", choices=PAIR_SCORES)
    neutral: str = option("auto", "Montessori style: the score that splits helpful from harmful drafts. 'auto' = 0 for influence (the paper's rule) and the median draft for 'icl' and 'both'; 'median' = the median draft for every signal (use it when nearly every draft lowers the reference loss).", choices=PAIR_NEUTRALS)
    step_by_step_prompt: str = option("Let's think step by step.", "The plain prompt that replaces the technique prompt in rationale pairs.", check=_text, check_text="not empty")
    max_p: float = option(0.05, "A pair is formed only when its paired exact test on the preference items both sides answered (McNemar for rationale pairs, a sign test over items for question pairs) favours the chosen side at p ≤ this (ours). A pair needs at least 6 discordant items (items only one side got right), all favouring its chosen side, to reach 0.05. 1 keeps every candidate, each still with its p. Influence and 'both' pairs have no per-item test and are kept untested.", minimum=0, maximum=1)


# A DPO teacher whose final reward margin is below this many nats of log-ratio (margin / beta) did not
# move: `arte align` warns and `arte health` marks the line bad (ours).
DPO_UNMOVED_NATS = 0.1


@dataclass
class AlignConfig:
    """Step 4: DPO of the teacher on the pairs with a LoRA adapter (TRL)."""

    learning_rate: float = option(5e-4, "Peak learning rate of the LoRA adapter (ours: the paper's 1e-7 is for full fine-tuning of a 7B model and leaves a fresh LoRA adapter where it started. On SmolLM2-135M with the demo's 12 pairs, one update at 5e-5 moved the reward margin 0.016 nats, one at 5e-4 0.81 nats on pairs not yet trained on). Lower it for runs of many steps.", **LEARNING_RATE)
    beta: float = option(0.1, "DPO beta (ours).", minimum=0.0, exclusive_minimum=True)
    batch_size: int = option(16, "Effective batch size (per-step batch × gradient accumulation).", **POSITIVE_INT)
    per_device_batch_size: int = option(2, "Pairs in one forward pass (at most batch_size).", **POSITIVE_INT)
    epochs: float = option(1.0, "Passes over the pairs.", **EPOCHS)
    warmup_ratio: float = option(0.1, "Share of steps with linear warm-up, in whole steps rounded down: a run of fewer than 1 / ratio steps has none, so warm-up never spends the only steps of a short run at learning rate 0.", **RATIO)
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
class CheckConfig:
    """The alignment check before SFT: base and aligned teacher drafts scored by the student on held-out items."""

    n_items: int = option(40, "Held-out check items, drawn once per run (stratified by label) from the task's pool outside the preference and test splits and every question of the run (ours: 40 keeps a 2-core check to minutes; more narrow the interval).", **POSITIVE_INT)
    n_drafts: int = option(0, "Drafts of each teacher scored, the first by question (0 = every regenerated draft).", minimum=0)
    n_resamples: int = option(2000, "Bootstrap resamples of check items for the intervals (seeded by the run's seed).", minimum=100)


@dataclass
class DistillConfig:
    """Step 5b: fine-tune the student on the original-teacher data and on the regenerated data (TRL SFT)."""

    learning_rate: float = option(2e-5, "SFT peak learning rate.", **LEARNING_RATE)
    epochs: float = option(1.0, "SFT passes over the data.", **EPOCHS)
    warmup_ratio: float = option(0.03, "SFT warm-up share, in whole steps rounded down (a run of fewer than 1 / ratio steps has none).", **RATIO)
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
    transfer_from: list[str] = option([], "Other students of this run whose aligned teacher's data this student also trains on, one more arm each, named 'from:STUDENT' (the paper's Table 5: a teacher aligned to one student teaching another). The arm is that student's 'arte' arm as its aligned teacher regenerated it, so run `arte regenerate --student STUDENT` first; it is cut to the same size as the other arms. Ours: `arte study --students A B` sets it for each student.", check=_distinct, check_text="each once")
    arms: list[str] = option(["original", "arte"], "Students to train, each on the same number of examples with the same settings: 'original' (data the unaligned teacher regenerated with ARTE's prompts, decoding and sizes: the paper's baseline), 'arte' (the aligned teacher's) and 'best_drafts' (the best-scored draft per question: a baseline the student selected, not the paper's).", choices=DISTILL_ARMS, non_empty=True, check=_arms, check_text="each once, with 'arte'")


@dataclass
class EvalConfig:
    """Evaluation of the untrained, original-teacher-trained and ARTE-trained students."""

    n_test: int = option(300, "Test questions (disjoint from the preference split). Ours: 300 by default, so a 3-shot accuracy has a 95% interval of about ±5 points; a built-in task's pool grows to fit; a BBH folder gives at most its held-out split.", **POSITIVE_INT)
    shots: list[int] = option([0, 3], "Numbers of chain-of-thought exemplars in the prompt (up to the task's exemplars).", minimum=0, non_empty=True, check=_distinct, check_text="each once")
    max_new_tokens: int = option(0, "Token limit of one answer (0 = from the task: its longest seed rationale with its answer, in the student's tokens, × 1.5). An answer that hits the limit is read only if it already stated its answer.", **ANSWER_TOKENS)
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


# Elicit fields added after runs were stored: left out of the run's identity at their default, so every
# stored run keeps its id, and in it otherwise.
_ADDED_ELICIT_FIELDS = ("question_source",)
# Elicit fields that never change a finished elicit's drafts, only when a failing teacher gives up.
_ELICIT_FIELDS_OUTSIDE_IDENTITY = ("max_unparsed_calls",)


def _elicit_identity(elicit: ElicitConfig) -> dict:
    identity = dataclasses.asdict(elicit)
    for name in _ELICIT_FIELDS_OUTSIDE_IDENTITY:
        del identity[name]
    defaults = ElicitConfig()
    for name in _ADDED_ELICIT_FIELDS:
        if identity[name] == getattr(defaults, name):
            del identity[name]
    return identity


@dataclass
class RunConfig:
    """The whole ARTE loop on one task."""

    task: str = option("boolean_expressions", "Task name: built-in, or a file stem in task_dir.", check=_text, check_text="not empty")
    task_dir: str | None = option(None, "Folder in the BBH layout (tasks/NAME.json, cot-prompts/NAME.txt); empty for built-in tasks.")
    task_difficulty: int = option(0, "Difficulty level of a built-in task (0 = the task's default level, BBH's shape). Levels: boolean_expressions 1-5 (expression size, 2 × level + 2 tokens; default 3), multistep_arithmetic_two 1-6 (numbers per bracketed group; default 4), word_sorting 2-20 (most words in a list; default 20), object_counting 2-12 (most things listed; default 12), dyck_languages 1-9 (size of the balanced runs; default 9), navigate 2-12 (most moves before the way back; default 8), web_of_lies 2-10 (people in the chain; default 5). Ours: `arte pilot` measures the level a student can learn at.", minimum=0)
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
    check: CheckConfig = section(CheckConfig, "Alignment check: base vs aligned teacher drafts on held-out items.")
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
        `elicit` field must leave it alone at its default (see `_elicit_identity`)."""
        identity = {"task": self.task, "task_dir": self.task_dir, "teacher": self.teacher, "seed": self.seed,
                    "elicit": _elicit_identity(self.elicit), "n_pref": self.score.n_pref,
                    "n_test": self.eval.n_test}
        if self.task_difficulty:  # added later: left out at its default so stored run ids stay
            identity["task_difficulty"] = self.task_difficulty
        # The item selection fixes the preference split; the default ('balanced', today's split) is left
        # out so stored run ids stay, and the pool and pilot sizes matter only to an 'irt' selection.
        if self.score.selection != ScoreConfig.selection:
            identity["selection"] = self.score.selection
        if self.score.selection == "irt":
            identity["n_candidates"] = candidate_count(self.score)
            identity["n_pilot_drafts"] = self.score.n_pilot_drafts
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def resolved_run_name(self) -> str:
        return self.run_name or f"{self.task}-{self.fingerprint()}"
