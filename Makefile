# ipvs_py developer entry points.  README.md's two commands are `make demo`
# and `make test`; .ci/run calls `make test`.  Every install step a fresh
# machine needs lives here or in scripts/system-deps.sh.

PYTHON ?= python3
PIP := $(PYTHON) -m pip --disable-pip-version-check
# pyenv only sees new console scripts (ipvs-py) after a rehash.
REHASH := command -v pyenv >/dev/null 2>&1 && pyenv rehash || true

.PHONY: demo install test test-deps test-fast bench asan clean

install:                ## build the Cython core and install ipvs-py (editable)
	$(PIP) install -e .
	@$(REHASH)

demo: install           ## install, then run the tour
	ipvs-py demo

test-deps:              ## system packages (qemu, kernel, clang...) and test extras
	bash scripts/system-deps.sh vm bpf
	$(PIP) install -e '.[test,bench,plot,kernel]'
	@$(REHASH)

test: test-deps         ## ASan run of the core, then the whole suite (kernel VM and BPF included)
	bash scripts/asan-test.sh -q -m "not kernel_vm and not slow"
	$(PYTHON) -m pytest

test-fast: install      ## everything but the kernel VM
	$(PYTHON) -m pytest -m "not kernel_vm"

bench: install          ## print the benchmark tables
	$(PIP) install -e '.[bench]'
	for b in bench/bench_*.py; do $(PYTHON) $$b || exit 1; done

asan: install           ## core + tests under AddressSanitizer/UBSan
	bash scripts/asan-test.sh

clean:
	rm -rf build ipvs_py/_core/*.c ipvs_py/_core/*.so ipvs_py/_core/*.html
