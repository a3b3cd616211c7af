# Two entry points a new user runs on a fresh machine; each sets itself up idempotently.
#   make demo   set up .venv, then train and compare label_smoothed_cross_entropy vs stk on the
#               embedded default corpus and print a sacreBLEU table
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
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,examples,vision,hf]'
	touch $(STAMP)

# Default corpus -> small transformers with label_smoothed_cross_entropy and stk -> sacreBLEU table.
demo: $(STAMP)
	$(PY) -m stk_nmt.translation.demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_aggregates.py
	$(PY) benchmarks/bench_topk_hinge.py --threads 1

clean-venv:
	rm -rf $(VENV)
