"""The studio's logic without a UI: handlers the Gradio app calls, plotly figures and dataset export."""
