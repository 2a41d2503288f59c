"""ARTE Studio's Gradio front end: thin wiring over the handlers in arte_core.studio (see ui/app.py)."""
