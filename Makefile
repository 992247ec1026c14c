# Developer tasks for cpool; .ci/run calls these, so CI and a developer run
# the same steps. PYTHON selects the interpreter (default: python).
PYTHON ?= python
# "python -m pytest" runs the pytest of $(PYTHON); the repository's root
# conftest.py makes it test the installed cpool, not the source tree's.
PYTEST ?= $(PYTHON) -m pytest
BENCH_OUT ?= bench/results

.PHONY: help build install test test-numpy test-baseline test-tools test-build lint typecheck docs bench bench-quick dist wheels clang asan ubsan fuzz clean

help:          ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build:         ## build the extension in the source tree (for PYTHONPATH=. runs)
	$(PYTHON) setup.py build_ext --inplace

install:       ## install cpool with its test extras, as the README's test command does
	$(PYTHON) -m pip install ".[test]"

test:          ## the library suite against the installed cpool (the README's test command)
	$(PYTEST)

test-numpy:    ## the library suite on the NumPy fallback
	CPOOL_BACKEND=numpy $(PYTEST) -q

test-baseline: ## the library suite on the portable (baseline ISA) kernels
	CPOOL_ISA=baseline $(PYTEST) -q

test-tools:    ## the benchmark's and the example's own tests
	$(PYTEST) -q bench examples

test-build:    ## fresh-venv builds: serial (no OpenMP), no compiler, a compiler without OpenMP (minutes)
	$(PYTEST) -q tests/stress/test_build.py --run-build

lint:          ## ruff over the whole repository
	$(PYTHON) -m ruff check .

typecheck:     ## mypy over cpool/ (installs mypy; configuration in pyproject.toml)
	PYTHON=$(PYTHON) bash .ci/typecheck.sh

docs:          ## the API reference with Sphinx, warnings as errors, against the installed cpool (installs Sphinx)
	PYTHON=$(PYTHON) bash .ci/docs.sh

bench:         ## the full benchmark (a few minutes); results in $(BENCH_OUT)
	$(PYTHON) bench/bench.py --out $(BENCH_OUT)

bench-quick:   ## a smoke run of the benchmark (under a minute)
	$(PYTHON) bench/bench.py --quick --out $(BENCH_OUT)

dist:          ## build the wheel and sdist, check their contents, install the wheel in a fresh venv
	$(PYTHON) tools/check_dist.py

wheels:        ## manylinux wheels for pyenv's CPython 3.9-3.13, each tested in a fresh venv without a compiler (minutes)
	bash .ci/wheels.sh

clang:         ## build with clang and libomp (warnings fail it), then a fast test run (installs clang if missing)
	PYTHON=$(PYTHON) bash .ci/clang.sh

asan:          ## the whole suite on an AddressSanitizer build, every kernel variant
	bash tools/asan_check.sh

ubsan:         ## the same with UndefinedBehaviorSanitizer as well
	ASAN_CHECK_UBSAN=1 bash tools/asan_check.sh

fuzz:          ## a short, reproducible fuzz run of every entry point under ASan + UBSan (fuzz/README.md)
	PYTHON=$(PYTHON) bash .ci/fuzz.sh

clean:         ## remove build outputs
	rm -rf build dist *.egg-info cpool/*.so cpool/*.pyd
