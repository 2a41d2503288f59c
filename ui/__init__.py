"""ARTE Studio's Gradio front end: thin wiring over arte_core.studio.handlers (see ui/app.py)."""
