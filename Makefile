# Two commands set up a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.rrsis-installed
# torch + torchvision: a pair that works together on the CPU machines (DEVELOPERS.md).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv system test test-fast demo bench lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q $(TORCH_PINS)
	# sam2 is an sdist; no build isolation, or its build pulls a second torch.
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation --no-deps sam2==1.1.0
	$(PIP) install -q -e '.[all,dev]'
	touch $(STAMP)

venv: $(STAMP)

system:
	bash scripts/setup-system.sh

test: system venv
	bash scripts/run-tests.sh

test-fast: venv
	$(PY) -m pytest -q -m "not slow and not gui and not browser and not postgres" -x

demo: venv
	$(VENV)/bin/rrsis demo

bench: venv
	$(VENV)/bin/rrsis bench engine

lint: venv
	$(PY) -m ruff check rrsis_engine app train plugins tests

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
