"""Loader for tasks in the BIG-Bench-Hard layout.

A task folder holds `tasks/NAME.json` (`{"examples": [{"input", "target"}, ...]}`) and
`cot-prompts/NAME.txt` (an optional canary line and a line of dashes, the task description,
then exemplars `Q: …` / `A: Let's think step by step. … So the answer is X.`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from arte_core.errors import ArteError
from arte_core.tasks.answers import AnswerFormat
from arte_core.tasks.base import Example, Exemplar, Task

_STEP_BY_STEP = "Let's think step by step."
_SO_THE_ANSWER = re.compile(r"So the answer is\s*(.+?)\.?\s*$", re.S)


def list_task_names(task_dir: Path) -> list[str]:
    """Names of the tasks in a BBH-layout folder that have both files."""
    tasks = {p.stem for p in (task_dir / "tasks").glob("*.json")}
    prompts = {p.stem for p in (task_dir / "cot-prompts").glob("*.txt")}
    return sorted(tasks & prompts)


def load_bbh_task(task_dir: str | Path, name: str) -> Task:
    """Load task `name` from a BBH-layout folder, with errors that name the file to fix."""
    task_dir = Path(task_dir)
    if not task_dir.is_dir():
        raise ArteError(f"task folder {task_dir} does not exist.")
    json_path = task_dir / "tasks" / f"{name}.json"
    prompt_path = task_dir / "cot-prompts" / f"{name}.txt"
    if not json_path.is_file():
        known = ", ".join(list_task_names(task_dir)) or "none"
        raise ArteError(f"unknown task '{name}': {json_path} does not exist (tasks in {task_dir}: {known}).")
    if not prompt_path.is_file():
        raise ArteError(f"task '{name}' has no cot-prompt: expected {prompt_path}.")
    examples = _read_examples(json_path)
    description, exemplars = parse_cot_prompt(prompt_path.read_text(encoding="utf-8"), prompt_path)
    fmt = AnswerFormat.infer([e.target for e in examples])
    return Task(
        name=name,
        description=description,
        exemplars=exemplars,
        examples=examples,
        answer_format=fmt,
        source=str(task_dir),
    )


def _read_examples(path: Path) -> list[Example]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArteError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise ArteError(f"{path} must be a JSON object with a list under 'examples'.")
    examples = []
    for i, row in enumerate(data["examples"]):
        if not isinstance(row, dict) or not isinstance(row.get("input"), str) or "target" not in row:
            raise ArteError(f"{path}: examples[{i}] needs a string 'input' and a 'target'.")
        examples.append(Example(input=row["input"].strip(), target=str(row["target"]).strip()))
    if not examples:
        raise ArteError(f"{path} has no examples; a task needs labelled examples for its preference and test splits.")
    return examples


def parse_cot_prompt(text: str, path: Path | str = "<cot-prompt>") -> tuple[str, list[Exemplar]]:
    """Split a cot-prompt file into the task description and its exemplars."""
    lines = text.strip("\n").splitlines()
    if len(lines) >= 2 and set(lines[1].strip()) == {"-"}:
        lines = lines[2:]  # canary line and the dashes under it
    body = "\n".join(lines).strip()
    blocks = re.split(r"\n\s*\n(?=Q:)", body)
    description = blocks[0].strip()
    if description.startswith("Q:"):
        raise ArteError(f"{path}: the file must start with a task description before the first 'Q:'.")
    exemplars = [_parse_exemplar(block, path) for block in blocks[1:]]
    if not exemplars:
        raise ArteError(f"{path}: no exemplars found; each must start with 'Q:' after a blank line.")
    return description, exemplars


def _parse_exemplar(block: str, path: Path | str) -> Exemplar:
    if "\nA:" not in block:
        raise ArteError(f"{path}: an exemplar has no 'A:' line: {block[:80]!r}.")
    question, answer_part = block.split("\nA:", 1)
    question = question.removeprefix("Q:").strip()
    rationale = answer_part.strip().removeprefix(_STEP_BY_STEP).strip()
    match = _SO_THE_ANSWER.search(rationale)
    if not match:
        raise ArteError(f"{path}: an exemplar's answer does not end with 'So the answer is X.': {block[:80]!r}.")
    return Exemplar(input=question, rationale=rationale, answer=match.group(1).strip())
