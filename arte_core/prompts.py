"""Every prompt ARTE sends: question generation, reasoning techniques, the plain step-by-step
prompt, the one-shot ICL prompt and the zero/few-shot evaluation prompt.

Teacher prompts are user-turn texts (backends wrap them in the chat template); student prompts are
plain completion text in the BBH "Q: … A: Let's think step by step." style unless chat is chosen.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

from arte_core.tasks import Exemplar, Task

STEP_BY_STEP = "Let's think step by step."

GENERIC_TECHNIQUES: dict[str, str] = {
    "expert_procedure": (
        "Solve it the way an expert in this kind of problem would: name the rule or procedure that "
        "applies, then apply it one small step at a time, writing every intermediate result."
    ),
    "common_sense": "Think about it briefly and plainly, the way a sensible person would, in a few short sentences.",
    "task_description": "{description}",
    "eliminate_options": (
        "List the possible answers, check each one against the facts of the question, eliminate the "
        "ones that cannot be right, and keep the one that survives."
    ),
}

ANSWER_FORMAT_RULE = "Finish with the final answer alone inside <ans></ans> tags, for example <ans>{example}</ans>."


def technique_instruction(task: Task, technique: str) -> str:
    """The reasoning-technique text: the task's own version when it has one, else the generic one."""
    specific = task.extra.get("techniques", {}) if task.extra else {}
    text = specific.get(technique) or GENERIC_TECHNIQUES[technique]
    return text.format(description=task.description)


def format_question_block(question: str, target: str) -> str:
    return f"<input>{question}</input>\n<target>{target}</target>"


def question_generation_prompt(task: Task, n_questions: int) -> str:
    """Task description + the seed questions, asking for new ones in the same tagged format."""
    seeds = "\n\n".join(format_question_block(e.input, e.answer) for e in task.exemplars[:3])
    return (
        f"Task: {task.description}\n\n"
        f"Here are examples of questions for this task, each with its correct answer:\n\n{seeds}\n\n"
        f"Write {n_questions} new, different questions for the same task, each with its correct answer, "
        "in exactly the same format: the question inside <input></input> and the answer inside <target></target>."
    )


QUESTION_PREFILL = "<input>"  # starts the teacher's reply, so even a small teacher keeps the format


def rationale_prompt(task: Task, technique: str, question: str) -> str:
    """Ask the teacher to reason about `question` with one technique and tag its answer."""
    return (
        f"Task: {task.description}\n\n"
        f"How to reason: {technique_instruction(task, technique)}\n\n"
        f"Question: {question}\n\n"
        f"Reason step by step. {ANSWER_FORMAT_RULE.format(example=task.exemplars[0].answer)}"
    )


def plain_rationale_prompt(task: Task, question: str, step_by_step: str = STEP_BY_STEP) -> str:
    """The technique prompt erased: what rationale pairs and regenerated rationales use."""
    return (
        f"Question: {question}\n\n{step_by_step} "
        f"{ANSWER_FORMAT_RULE.format(example=task.exemplars[0].answer)}"
    )


def rationale_body(rationale: str) -> str:
    """A rationale without its trailing <ans> tag or 'So the answer is' sentence."""
    from arte_core.parsing import strip_answer

    return strip_answer(rationale)


def demo_block(question: str, rationale: str, answer: str) -> str:
    """One worked example in the BBH style the student sees as a demonstration."""
    body = rationale_body(rationale).strip()
    body = re.sub(r"\n\s*\n", "\n", body.removeprefix(STEP_BY_STEP).strip())  # a blank line ends a block
    return f"Q: {question}\nA: {STEP_BY_STEP} {body} So the answer is {answer}."


def question_stub(question: str) -> str:
    return f"Q: {question}\nA: {STEP_BY_STEP}"


def icl_prompt(demo_question: str, demo_rationale: str, demo_answer: str, question: str) -> str:
    """The one-shot prompt: the draft as the only demonstration, then the preference question."""
    return f"{demo_block(demo_question, demo_rationale, demo_answer)}\n\n{question_stub(question)}"


def few_shot_prompt(task: Task, question: str, exemplars: list[Exemplar]) -> str:
    """Zero-shot (no exemplars) or k-shot evaluation prompt with the task description on top."""
    parts = [task.description]
    parts += [demo_block(e.input, e.rationale, e.answer) for e in exemplars]
    parts.append(question_stub(question))
    return "\n\n".join(parts)


# A student's chain may run longer than the seed exemplars' (it pads, restates, hesitates); an answer
# cut off by the cap is unparsed, so the derived budget errs long.
BUDGET_HEADROOM = 1.5


def answer_budget(task: Task, count_tokens: Callable[[str], int]) -> int:
    """Tokens one student answer may take: the longest worked answer of the task's seed exemplars (the
    text after "A: Let's think step by step.", its "So the answer is X." and the blank line that ends
    it), in the student's tokens, × BUDGET_HEADROOM."""
    longest = max(count_tokens(demo_block(e.input, e.rationale, e.answer)[len(question_stub(e.input)):] + "\n\n")
                  for e in task.exemplars)
    return math.ceil(longest * BUDGET_HEADROOM)


# A student answer ends at a blank line (blocks are separated by one), at the next question or
# answer line, or where a chat-style answer closes its tag.
STUDENT_STOP = ("\n\n", "\nQ:", "\nA:", "</ans>")


def sft_example(task: Task, question: str, rationale: str, answer: str) -> dict:
    """A student SFT example: the zero-shot evaluation prompt, and the worked answer as completion."""
    block = demo_block(question, rationale, answer)
    completion = block[len(question_stub(question)):]
    return {"prompt": few_shot_prompt(task, question, []), "completion": completion}


@dataclass(frozen=True)
class TeacherPrompts:
    """The teacher's prompts in one of two formats.

    'chat': instructions in a user turn (what an instruct teacher such as the paper's 70B expects).
    'completion': a pattern to continue (description, worked examples, an open slot); a teacher as
    small as 135M parameters follows a pattern far more reliably than an instruction.
    The stored prompt text is the format-specific text; `render` adds the chat template when needed.
    """

    task: Task
    fmt: str = "chat"
    questions_per_call: int = 5
    step_by_step: str = STEP_BY_STEP

    def questions(self) -> str:
        if self.fmt == "chat":
            return question_generation_prompt(self.task, self.questions_per_call)
        seeds = "\n\n".join(format_question_block(e.input, e.answer) for e in self.task.exemplars[:3])
        return f"{self.task.description}\n\n{seeds}\n\n"

    def rationale(self, technique: str, question: str) -> str:
        if self.fmt == "chat":
            return rationale_prompt(self.task, technique, question)
        demo = self.task.exemplars[0]
        return (f"{self.task.description}\nHow to reason: {technique_instruction(self.task, technique)}\n\n"
                f"{demo_block(demo.input, demo.rationale, demo.answer)}\n\n{question_stub(question)}")

    def plain_rationale(self, question: str) -> str:
        """The rationale prompt with its technique erased."""
        if self.fmt == "chat":
            return plain_rationale_prompt(self.task, question, self.step_by_step)
        demo = self.task.exemplars[0]
        return (f"{self.task.description}\n\n{demo_block(demo.input, demo.rationale, demo.answer)}\n\n"
                f"Q: {question}\nA: {self.step_by_step}")

    def render(self, text: str, chat_prompt) -> str:
        """The exact string the teacher model receives for a stored prompt text."""
        return chat_prompt(text) if self.fmt == "chat" else text

    @property
    def rationale_stop(self) -> tuple[str, ...]:
        return ("</ans>",) if self.fmt == "chat" else STUDENT_STOP

    @property
    def keep_stop(self) -> bool:
        return self.fmt == "chat"  # keep the closing </ans>; a completion ends at a blank line

