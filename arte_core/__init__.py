"""ARTE Studio engine: tasks, models, the five ARTE stages, the DuckDB store and the CLI.

Nothing in this package imports Gradio; the UI lives in `ui/`.
"""

__version__ = "0.1.0"
