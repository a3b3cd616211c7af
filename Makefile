# Two entry points a new user runs on a fresh machine; each sets itself up idempotently.
#   make demo   set up .venv, then run the main job on the embedded default data
#   make test   set up .venv, then run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean-venv

setup: $(STAMP)

# constraints.txt pins torch to the CPU build; without it pip would fetch a CUDA torch.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,examples]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) benchmarks/bench_aggregates.py

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_aggregates.py

clean-venv:
	rm -rf $(VENV)
