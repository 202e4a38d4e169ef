# One command per job; each makes its own virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARSIM := $(VENV)/bin/arsim
SCENARIO ?= scenarios/orbit-desk
DEVICE ?= redmi-note-10
OUT ?= out/run

.PHONY: setup run test bench lint samples clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The main job: replay the bundled sample on the default device and model.
# Exit code 1 only means a budget failed; the verdict is the output, so make succeeds.
run: setup
	$(ARSIM) run $(SCENARIO) --device $(DEVICE) --out $(OUT); rc=$$?; [ $$rc -le 1 ]

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/run_bench.py --out bench/results.json

lint: setup
	$(VENV)/bin/ruff check .

# Regenerate the bundled sample scenarios (deterministic for their seeds).
samples: setup
	$(PY) -m simulator.scenario.samples

clean:
	rm -rf out .pytest_cache .ruff_cache
