"""Export the studio's data with the `datasets` library: pairs, SFT data and scored drafts.

Pairs are exported as DPO will see them: human decisions applied through `Store.training_pairs`
(excluded pairs dropped, swapped pairs swapped), in TRL's prompt/chosen/rejected columns, with
provenance columns (run, task, teacher, student, signal, style, refs, scores, decision) beside them. Each
export writes JSONL, Parquet and a `save_to_disk` folder (zipped for download); pushing to the Hub
needs HF_TOKEN. The Export tab's handlers (`export_files`, `push_export`) sit at the end.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import datasets
import pandas as pd
from datasets import Dataset

from arte_core.errors import ArteError
from arte_core.store import Store
from arte_core.store import exports
from arte_core.studio.common import require, require_run, require_student
from arte_core.studio.health import health_record

FORMATS = ("jsonl", "parquet", "hf")
EXPORT_KINDS = ("pairs", "sft", "drafts")
SAFE_NAME_LENGTH = 60  # two names and a prefix stay far below the usual 255-byte limit of a file name
EXPORT_FOLDER_PREFIX = "arte-export-"
# An export folder only has to outlive its request: Gradio copies the returned files into its own
# cache as soon as the handler returns. Ten minutes leaves ample room for a slow copy.
EXPORT_FOLDER_LIFETIME_S = 600


def pair_records(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Training pairs with overrides applied, in TRL form, plus where each pair came from."""
    live = pd.DataFrame(store.training_pairs(run_id, student), columns=["pair_id", "kind", "prompt", "chosen", "rejected"])
    provenance = exports.pair_provenance(store, run_id, student).drop(columns=["kind"])
    merged = live.merge(provenance, on="pair_id", how="left")
    swapped = merged["decision"] == "swap"
    # After a swap the text in `chosen` is the proxy's rejected one: keep refs and scores with their text.
    for left, right in (("chosen_ref", "rejected_ref"), ("chosen_score", "rejected_score")):
        merged.loc[swapped, [left, right]] = merged.loc[swapped, [right, left]].to_numpy()
    merged["swapped_by_human"] = swapped
    merged["decision"] = merged["decision"].astype(object).where(merged["decision"].notna(), None)
    merged["decided_by"] = merged["decided_by"].astype(object).where(merged["decided_by"].notna(), None)
    columns = ["prompt", "chosen", "rejected", "pair_id", "run_id", "task", "teacher", "student", "kind", "signal",
               "style", "chosen_ref", "rejected_ref", "chosen_score", "rejected_score", "margin", "decision",
               "decided_by", "swapped_by_human"]
    return merged[columns]


def sft_records(store: Store, run_id: str, dataset: str | None = None) -> pd.DataFrame:
    """The SFT examples of a run ('original' and/or 'arte') with their run, task and teacher."""
    return exports.sft_rows(store, run_id, dataset)


def draft_records(store: Store, run_id: str, student: str) -> pd.DataFrame:
    """Every draft (question, technique, prompt, rationale, teacher answer) with its score for `student`."""
    return exports.draft_rows(store, run_id, student)


def safe_name(text: str) -> str:
    """A file-name-safe version of a run or student name, at most SAFE_NAME_LENGTH characters.

    A name that is already safe and short stays as it is; any other (spaces, other scripts, 5,000
    characters) keeps its safe start plus a short hash of the whole name, so two such names never
    share a file name and every name fits the file system.
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")
    if cleaned == text and len(text) <= SAFE_NAME_LENGTH:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    start = cleaned[:SAFE_NAME_LENGTH - len(digest) - 1].rstrip("_.")
    return f"{start}-{digest}" if start else digest


def write_dataset(frame: pd.DataFrame, folder: str | Path, name: str,
                  formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write `frame` as JSONL, Parquet and a zipped `save_to_disk` folder; returns the written files."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ArteError(f"unknown export format {unknown[0]!r}; choose from {', '.join(FORMATS)}.")
    if frame.empty:
        raise ArteError(f"nothing to export for {name}: the selection has no rows.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dataset = Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    written = []
    with quiet_progress():
        if "jsonl" in formats:
            path = folder / f"{name}.jsonl"
            dataset.to_json(str(path), lines=True, force_ascii=False)
            written.append(path)
        if "parquet" in formats:
            path = folder / f"{name}.parquet"
            dataset.to_parquet(str(path))
            written.append(path)
        if "hf" in formats:
            written.append(_save_to_disk_zipped(dataset, folder / f"{name}_dataset"))
    return written


@contextmanager
def quiet_progress() -> Iterator[None]:
    """No `datasets` progress bars in the server log while exporting; the previous setting comes back."""
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _save_to_disk_zipped(dataset: Dataset, target: Path) -> Path:
    """`save_to_disk` writes a folder; a browser downloads one file, so the folder is zipped too."""
    if target.exists():
        shutil.rmtree(target)
    dataset.save_to_disk(str(target))
    return Path(shutil.make_archive(str(target), "zip", root_dir=target))


def export_pairs(store: Store, run_id: str, student: str, folder: str | Path,
                 formats: tuple[str, ...] = FORMATS) -> list[Path]:
    return write_dataset(pair_records(store, run_id, student), folder,
                         f"pairs_{safe_name(run_id)}_{safe_name(student)}", formats)


def export_sft(store: Store, run_id: str, folder: str | Path, dataset: str | None = None,
               formats: tuple[str, ...] = FORMATS) -> list[Path]:
    suffix = f"_{safe_name(dataset)}" if dataset else ""
    return write_dataset(sft_records(store, run_id, dataset), folder, f"sft_{safe_name(run_id)}{suffix}", formats)


def export_drafts(store: Store, run_id: str, student: str, folder: str | Path,
                  formats: tuple[str, ...] = FORMATS) -> list[Path]:
    return write_dataset(draft_records(store, run_id, student), folder,
                         f"drafts_{safe_name(run_id)}_{safe_name(student)}", formats)


def push_to_hub(frame: pd.DataFrame, repo_id: str, private: bool = True) -> str:
    """Push a dataset to the Hugging Face Hub when HF_TOKEN is set; returns what happened, in words."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        return "Not pushed: set the HF_TOKEN environment variable (a write token) and restart the studio."
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo_id or ""):
        return f"Not pushed: {repo_id!r} is not a dataset id like 'your-name/arte-pairs'."
    if frame.empty:
        return "Not pushed: the selection has no rows."
    try:
        Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False).push_to_hub(
            repo_id, private=private, token=token)
    except Exception as exc:  # the Hub's errors (network, permissions) are shown to the user as text
        return f"Push to {repo_id} failed: {exc}"
    return f"Pushed {len(frame)} rows to https://huggingface.co/datasets/{repo_id}"


# -- the Export tab's handlers ---------------------------------------------------------------------

def export_files(store: Store, what: Any, run_id: Any, student: Any, formats: Any = None,
                 folder: str | Path | None = None) -> dict:
    """Write one export (pairs, sft or drafts) in the chosen formats; returns the files and a message.
    Without `folder` the files go to a fresh temporary folder, removed by a later export (new_export_folder)."""
    run_id = require_run(store, run_id)
    what = require(what, "what to export")
    if what not in EXPORT_KINDS:
        raise ArteError(f"cannot export {what!r}; choose one of {', '.join(EXPORT_KINDS)}.")
    if what in ("pairs", "drafts"):
        student = require_student(store, run_id, student, what)
    formats = tuple(formats or FORMATS)
    folder = Path(folder) if folder else new_export_folder()
    if what == "pairs":
        files = export_pairs(store, run_id, student, folder, formats)
        frame = pair_records(store, run_id, student)
        detail = f"{len(frame)} training pairs ({int(frame['swapped_by_human'].sum())} swapped by people; excluded pairs left out)"
    elif what == "sft":
        files = export_sft(store, run_id, folder, None, formats)
        detail = f"{len(sft_records(store, run_id))} SFT examples"
    else:
        files = export_drafts(store, run_id, student, folder, formats)
        frame = draft_records(store, run_id, student)
        detail = f"{len(frame)} drafts ({int(frame['accuracy'].notna().sum())} scored for {html.escape(student)})"
    if what in ("pairs", "drafts"):
        files += write_health(store, run_id, student, folder)
    return dict(files=[str(f) for f in files], message=f"Exported {detail}: {', '.join(Path(f).name for f in files)}.")


def write_health(store: Store, run_id: str, student: str, folder: str | Path) -> list[Path]:
    """The signal-health lines of the exported run × student (studio/health.py), as `health.json`
    beside the data: whoever trains on the pairs sees whether the signal behind them was sound. None
    (an empty list) when the student has no ICL scores to audit."""
    try:
        record = health_record(store, run_id, student)
    except ArteError:
        return []
    path = Path(folder) / "health.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    return [path]


def push_export(store: Store, what: Any, run_id: Any, student: Any, repo_id: Any) -> str:
    """Push one export (pairs, sft or drafts) to the Hub as `repo_id`; returns what happened, in words."""
    run_id, what = require_run(store, run_id), require(what, "what to export")
    frames = {
        "pairs": lambda: pair_records(store, run_id, require_student(store, run_id, student, "pairs")),
        "sft": lambda: sft_records(store, run_id),
        "drafts": lambda: draft_records(store, run_id, require_student(store, run_id, student, "drafts")),
    }
    if what not in frames:
        raise ArteError(f"cannot push {what!r}; choose one of {', '.join(EXPORT_KINDS)}.")
    return push_to_hub(frames[what](), str(repo_id or "").strip())


def export_store(store: Store, run_id: Any = None, folder: str | Path | None = None) -> dict:
    """Every table of the chosen run (all runs when none is chosen) as Parquet files, zipped for download;
    returns the files and a message."""
    from arte_core.store.transfer import export_parquet

    run_ids = [require_run(store, run_id)] if run_id else None
    tables = Path(folder or new_export_folder()) / "store"
    export_parquet(store, tables, run_ids)
    archive = shutil.make_archive(str(tables), "zip", root_dir=tables)
    message = f"Exported run {run_id or '(all runs)'} as Parquet tables: {Path(archive).name}."
    return dict(files=[archive], message=message)


def new_export_folder() -> Path:
    """A fresh temporary folder for one export; export folders older than EXPORT_FOLDER_LIFETIME_S
    (this process's or another studio's on this machine) are removed first, so they do not pile up."""
    remove_old_export_folders()
    return Path(tempfile.mkdtemp(prefix=EXPORT_FOLDER_PREFIX))


def remove_old_export_folders(lifetime_s: float = EXPORT_FOLDER_LIFETIME_S) -> None:
    cutoff = time.time() - lifetime_s
    for folder in Path(tempfile.gettempdir()).glob(f"{EXPORT_FOLDER_PREFIX}*"):
        try:
            if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # removed meanwhile by another studio: nothing left to do
            pass
