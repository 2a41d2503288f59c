"""Loader for tasks in the BIG-Bench-Hard layout.

A task folder holds `tasks/NAME.json` (`{"examples": [{"input", "target"}, ...]}`) and
`cot-prompts/NAME.txt` (an optional canary line and a line of dashes, the task description,
then exemplars `Q: …` / `A: Let's think step by step. … So the answer is X.`).
"""

from __future__ import annotations

import json
import math
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
    description, exemplars = parse_cot_prompt(read_text(prompt_path), prompt_path)
    fmt = AnswerFormat.infer([e.target for e in examples])
    return Task(
        name=name,
        description=description,
        exemplars=exemplars,
        examples=examples,
        answer_format=fmt,
        source=str(task_dir),
    )


def read_text(path: Path) -> str:
    """A task file's text. UTF-8, with or without the byte-order mark some Windows editors write."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArteError(f"{path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); re-save it "
                        "as UTF-8 (in most editors: Save As, encoding UTF-8).") from None
    except OSError as exc:
        raise ArteError(f"cannot read {path}: {exc.strerror or exc}.") from None


def _read_examples(path: Path) -> list[Example]:
    text = read_text(path)
    if not text.strip():
        raise ArteError(f"{path} is empty; it must be a JSON object with a list of examples under 'examples'.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArteError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}.") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ArteError(f"{path} is not JSON this loader can read: {exc}.") from None
    except RecursionError:
        raise ArteError(f"{path} nests JSON too deeply to read; a task file is an object with a flat list "
                        "of examples under 'examples'.") from None
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise ArteError(f"{path} must be a JSON object with a list under 'examples'.")
    examples = [Example(input=_field_text(path, i, row, "input", numbers_as_text=False),
                        target=_field_text(path, i, row, "target")) for i, row in enumerate(data["examples"])]
    if not examples:
        raise ArteError(f"{path} has no examples; a task needs labelled examples for its preference and test splits.")
    return examples


_JSON_TYPE_NAMES = {type(None): "null", list: "a list", dict: "an object", bool: "a boolean", float: "a number",
                    int: "a number"}


def _field_text(path: Path, index: int, row: object, key: str, numbers_as_text: bool = True) -> str:
    """An example's `input` or `target` as stripped text, or an ArteError naming the file, the
    example and the fix. A target may be a JSON number or boolean (read as its text: 3, True);
    null, lists, objects and empty text are refused rather than read as 'None' or '[...]'."""
    where = f"{path}: examples[{index}]"
    fix = f"give every example a non-empty text '{key}', or remove examples[{index}]"
    if not isinstance(row, dict):
        raise ArteError(f"{where} is {_JSON_TYPE_NAMES.get(type(row), type(row).__name__)}, not an object with "
                        f"'input' and 'target'; {fix}.")
    if key not in row:
        raise ArteError(f"{where} has no '{key}'; {fix}.")
    value = row[key]
    if numbers_as_text and isinstance(value, (int, float)) and math.isfinite(value):  # bool is an int: True
        value = str(value)
    if not isinstance(value, str):
        raise ArteError(f"{where}: '{key}' is {_JSON_TYPE_NAMES.get(type(value), type(value).__name__)}"
                        f"{f' ({value!r})' if isinstance(value, (int, float)) else ''}, not text; {fix}.")
    value = value.strip()
    if not value:
        raise ArteError(f"{where}: '{key}' is empty; {fix}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON can spell a lone surrogate (\ud800) that no text file can hold
        raise ArteError(f"{where}: '{key}' holds an unpaired surrogate ({value[exc.start]!r} at character "
                        f"{exc.start}), which is not valid Unicode text; {fix}.") from None
    return value


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
