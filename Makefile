# Two commands on a fresh machine:  make demo  |  make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch/torchvision pinned to the builds this project is tested with (they install from the local
# package cache on the project's machines; elsewhere pip downloads them).
TORCH  ?= torch==2.14.1 torchvision==0.29.1
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: install data browser demo test test-fast clean help
help:
	@echo "make demo   - install into $(VENV), get Fashion-MNIST, run the demo comparison (about 3 min on 2 idle CPU cores)"
	@echo "make test   - install, then run the test suite (about 7 min on 2 idle CPU cores)"
	@echo "make test-fast - the same without the tests marked slow; TESTS=FILE narrows either to one file"

install: $(STAMP)
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

# Real data from a registry package: Debian's dataset-fashion-mnist (original IDX files).
data: $(FMNIST)
$(FMNIST):
	@if command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	else \
	  echo "apt-get not found: put Fashion-MNIST's four *-ubyte.gz files in data/fashion-mnist/"; \
	fi

# The results browser's tests drive Debian's chromium with playwright (never `playwright install`).
CHROMIUM := /usr/bin/chromium
browser: $(CHROMIUM)
$(CHROMIUM):
	@if command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; \
	else \
	  echo "apt-get not found: the browser tests skip without chromium"; \
	fi

demo: install data
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash scripts/demo.sh

# TESTS narrows a run: a file, a node id or a marker expression, e.g. TESTS=tests/test_lr_schedule.py
TESTS ?=
test: install data browser
	$(PY) -m pytest -q -n 2 --dist worksteal --durations=20 $(TESTS)

test-fast: install data browser
	$(PY) -m pytest -q -n 2 --dist worksteal -m "not slow" $(TESTS)

clean:
	rm -rf $(VENV) outputs runs .pytest_cache
