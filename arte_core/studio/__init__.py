"""The studio's logic without a UI: one module of handlers per tab (common.py holds what they share),
plotly figures and dataset export."""
