"""Student preference signals: one-shot ICL accuracy (ARTE) and local data influence (Montessori-Instruct)."""
