"""The study: does tailoring help this student? `arte study` runs the loop per task × seed (runner.py),
aggregates arms × tasks with intervals over seeds and items and the design's minimum detectable effect
(evaluation.py per run, aggregate.py across runs), and writes study.md, study.json and a plotly HTML
(report.py)."""
