# Two entry points a new user runs on a fresh machine; each sets itself up idempotently.
#   make demo   set up .venv, then train and compare label_smoothed_cross_entropy vs stk on the
#               embedded default corpus and print a sacreBLEU table
#   make test   set up .venv, then run the whole test suite
#   make test-pythons   the fast tests on each other Python that requires-python admits (README "Install")
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-pythons bench clean-venv

setup: $(STAMP)

# constraints.txt pins torch to the CPU build; without it pip would fetch a CUDA torch.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Default corpus -> small transformers with label_smoothed_cross_entropy and stk -> sacreBLEU table.
demo: $(STAMP)
	$(PY) -m stk_nmt.translation.demo

# One pytest-xdist worker per core (at most 4: each loads torch and fairseq); the tests share no
# files or folders (all in tmp_path), so they run in any order and in parallel.
test: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses 4

# requires-python admits 3.11 and 3.12 (ve-fairseq's wheels); $(PYTHON) is the default. Each other
# version gets its own .venv-<version>, from pyenv when it has that version, else from PATH. There
# pip finds no local CPU wheel of torch for 3.12, so it installs the CUDA build (about 5 GB): too
# big for .ci/run, hence a target of its own.
OTHER_PYTHONS ?= 3.12
FAST_TESTS ?= tests/core tests/criterions tests/test_packaging.py -m "not slow"

test-pythons:
	set -e; for v in $(OTHER_PYTHONS); do \
	  ver=$$(pyenv versions --bare 2>/dev/null | grep -E "^$$v(\.[0-9]+)?$$" | tail -n 1 || true); \
	  if [ -n "$$ver" ]; then py="$$(pyenv prefix $$ver)/bin/python$$v"; else py=$$(command -v python$$v || true); fi; \
	  if [ -z "$$py" ] || ! "$$py" -c pass; then echo "no python$$v found (pyenv install $$v)"; exit 1; fi; \
	  test -x $(VENV)-$$v/bin/python || "$$py" -m venv $(VENV)-$$v; \
	  $(VENV)-$$v/bin/python -m pip install --quiet -c constraints.txt -e '.[test]'; \
	  echo "== Python $$($(VENV)-$$v/bin/python -V 2>&1 | cut -d' ' -f2): $(FAST_TESTS)"; \
	  $(VENV)-$$v/bin/python -m pytest -q $(FAST_TESTS); \
	done

bench: $(STAMP)
	$(PY) benchmarks/bench_aggregates.py
	$(PY) benchmarks/bench_topk_hinge.py --threads 1

clean-venv:
	rm -rf $(VENV) $(VENV)-3.*
