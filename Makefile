# The two commands of the README: `make demo` and `make test`. Every install goes through
# constraints.txt (the pinned versions); `make lock` rewrites it, `make test-latest` reports
# what the newest versions the pyproject ranges allow would change.
VENV ?= .venv
PY := $(VENV)/bin/python
PIN := -c constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-dev demo test test-latest lock lint

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q $(PIN) --upgrade pip
	$(PY) -m pip install -q $(PIN) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q $(PIN) -e '.[dev,train]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/copytrace demo --samples tests/data --out out/demo

# pytest's "no tests collected" (5) is a failure too.
test: install-dev
	$(PY) -m pytest -q; rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests" >&2; \
	[ $$rc -eq 0 ]

# Newest allowed versions in a venv of their own: prints the drift from constraints.txt and
# the suite's result. A report only: it never changes the pins (that is `make lock`).
test-latest:
	rm -rf .venv-latest
	python3 -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --upgrade pip
	.venv-latest/bin/python -m pip install -q -e '.[dev,train]'
	-.venv-latest/bin/python scripts/pins.py drift constraints.txt
	.venv-latest/bin/python -m pytest -q -p no:cacheprovider --ignore=tests/test_wheel.py

# Re-pin: the newest versions the pyproject ranges allow, from a fresh venv. Run `make test`
# afterwards and commit constraints.txt only when it passes.
lock:
	rm -rf .venv-lock
	python3 -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q --upgrade pip
	.venv-lock/bin/python -m pip install -q '.[dev,train]'
	.venv-lock/bin/python scripts/pins.py freeze > constraints.txt
	rm -rf .venv-lock

lint: install-dev
	$(VENV)/bin/ruff check src tests bench scripts
