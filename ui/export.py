"""The Export tab: download pairs (with human overrides applied), SFT data and scored drafts as
JSONL, Parquet or a `datasets` folder; push them to the Hub; export the whole store as Parquet."""

import gradio as gr

from arte_core.studio import export
from ui.common import StudioContext, guarded

FORMAT_CHOICES = [("JSONL", "jsonl"), ("Parquet", "parquet"), ("datasets save_to_disk (zip)", "hf")]


def build_export_tab(ctx: StudioContext) -> None:
    gr.Markdown("Pairs are exported as DPO trains on them: excluded pairs dropped, swapped pairs swapped, in TRL's "
                "`prompt` / `chosen` / `rejected` columns with provenance columns (run, teacher, student, signal, "
                "scores, decision).")
    formats = gr.CheckboxGroup(FORMAT_CHOICES, value=list(export.FORMATS), label="Formats")
    with gr.Row():
        pairs = gr.Button("Export pairs", variant="primary", elem_id="export-pairs")
        sft = gr.Button("Export SFT data", elem_id="export-sft")
        drafts = gr.Button("Export drafts with scores", elem_id="export-drafts")
        store_button = gr.Button("Export the whole store (Parquet)", elem_id="export-store")
    message = gr.Markdown(elem_id="export-message")
    files = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="export-files")
    _wire_files(ctx, formats, pairs, sft, drafts, store_button, message, files)
    _hub_section(ctx)


def _wire_files(ctx: StudioContext, formats, pairs, sft, drafts, store_button, message, files) -> None:
    def exporter(what: str):
        def run_export(run_id, student, chosen_formats):
            if not chosen_formats:
                raise gr.Error("Choose at least one format.", title="Nothing to export")
            result = export.export_files(ctx.store, what, run_id, student, chosen_formats)
            return result["files"], result["message"]
        return run_export

    inputs = [ctx.run, ctx.student, formats]
    pairs.click(guarded(exporter("pairs")), inputs, [files, message], api_name="export_pairs")
    sft.click(guarded(exporter("sft")), inputs, [files, message], api_name="export_sft")
    drafts.click(guarded(exporter("drafts")), inputs, [files, message], api_name="export_drafts")
    def whole_store(run_id):
        result = export.export_store(ctx.store, run_id)
        return result["files"], result["message"]

    store_button.click(guarded(whole_store), [ctx.run], [files, message], api_name="export_store")


def _hub_section(ctx: StudioContext) -> None:
    gr.Markdown("### Push to the Hugging Face Hub\nNeeds a write token in the `HF_TOKEN` environment variable; "
                "datasets are created private.")
    with gr.Row():
        what = gr.Radio(list(export.EXPORT_KINDS), value="pairs", label="Data")
        repo_id = gr.Textbox(label="Dataset id", placeholder="your-name/arte-pairs")
        push = gr.Button("Push", interactive=not ctx.read_only, elem_id="export-push")
    result = gr.Markdown(elem_id="export-push-result")

    def push_data(what_value, run_id, student, repo):
        ctx.require_writable("pushing to the Hub")
        return export.push_export(ctx.store, what_value, run_id, student, repo)

    push.click(guarded(push_data), [what, ctx.run, ctx.student, repo_id], result, api_name="export_push")
