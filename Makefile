# dossiersync — set-up, demo and tests on Debian (as root, or with sudo).
#   make demo   installs what it needs, then runs the three-dossier demo
#   make test   installs what it needs, then lint, format check, mypy and the test suite

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
APT_PACKAGES := unixodbc libsqliteodbc odbc-postgresql postgresql chromium chromium-driver redis-server
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := $(VENV)/bin

.PHONY: setup system venv demo demo-serve test lint typecheck pytest catalogues bench bench-latency bench-multi bench-changes bench-distributed faults clean

setup: system venv

system:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@odbcinst -q -d -n "SQLite3" >/dev/null 2>&1 || \
	  printf '[SQLite3]\nDescription=SQLite3 ODBC Driver\nDriver=libsqlite3odbc.so\nSetup=libsqlite3odbc.so\n' \
	  | $(SUDO) odbcinst -i -d -r >/dev/null
	@odbcinst -q -d -n "PostgreSQL Unicode" >/dev/null 2>&1 || \
	  $(SUDO) odbcinst -i -d -f /usr/share/psqlodbc/odbcinst.ini.template >/dev/null

$(BIN)/.installed: pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/.installed

demo: setup
	$(BIN)/dossiersync demo

# the demo, then the service and its status page until Ctrl-C
demo-serve: setup
	$(BIN)/dossiersync demo --serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# core/, plugins/ and entities/ form one import namespace: check it under its real names
typecheck: venv
	@rm -rf build/typecheck && mkdir -p build/typecheck/dossiersync
	@for f in core/*; do ln -s ../../../$$f build/typecheck/dossiersync/; done
	@ln -s ../../../plugins build/typecheck/dossiersync/plugins
	@ln -s ../../../entities build/typecheck/dossiersync/entities
	cd build/typecheck && ../../$(BIN)/mypy -p dossiersync --config-file ../../pyproject.toml
	# the unit tests' fakes must keep implementing the endpoint protocols
	MYPYPATH=build/typecheck:tests $(BIN)/mypy tests/support/fakes.py --config-file pyproject.toml

# two workers (pytest-xdist), one per core: each test starts its own servers on free
# ports and works in its own folders; PYTEST_ARGS="-n 0" runs them one at a time
pytest: setup
	$(BIN)/pytest -q -n 2 $(PYTEST_ARGS)

test: setup lint typecheck pytest

# the status page's French and English catalogues (Babel, a dev dependency): the keys of
# core/web's modules and templates into messages.pot, merged into each language's .po
# (a new key comes in untranslated: tests/test_i18n_catalogues.py fails until both
# languages have its text), then compiled to the .mo files the page reads (committed)
#
# the command line's (core/locale, domain cli): the messages of dossiersync and its
# built-in plugins with click's help (dossiersync.lang_extract), the same way; their ids
# are the English texts, which the English catalogue is given as its own
LOCALE := core/web/locale
CLI_LOCALE := core/locale
CLI_KEYWORDS := -k NP_:1c,2 -k NN_:1,2 -k said -k said_as:1c,2
catalogues: venv
	$(BIN)/pybabel -q extract -F $(LOCALE)/babel.cfg -k t -k N_ --sort-output \
	  --add-location=file --project=dossiersync -o $(LOCALE)/messages.pot core/web
	$(BIN)/pybabel -q update -i $(LOCALE)/messages.pot -d $(LOCALE) -D messages \
	  --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d $(LOCALE) -D messages --statistics
	$(BIN)/pybabel -q extract -F $(CLI_LOCALE)/babel.cfg $(CLI_KEYWORDS) --sort-output \
	  --add-location=file --project=dossiersync -o $(CLI_LOCALE)/cli.pot core plugins
	$(BIN)/pybabel -q update -i $(CLI_LOCALE)/cli.pot -d $(CLI_LOCALE) -D cli \
	  --no-fuzzy-matching --ignore-obsolete
	$(BIN)/python -m dossiersync.lang_extract english $(CLI_LOCALE)/en/LC_MESSAGES/cli.po
	$(BIN)/pybabel compile -d $(CLI_LOCALE) -D cli --statistics

# figures for docs/benchmarks.md: first syncs against the strict simulator, side by side
# with a minimal loader; SCENARIOS="large readme" (default both), BENCH_ARGS="--repeat 3"
# the figures of docs/reliability.md: syncs through the fault proxy at 5 % and 20 %
faults: setup
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/python tests/faults/report.py $(FAULTS_ARGS)

bench: setup
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/python tests/benchmarks/bench_sync.py $(SCENARIOS) $(BENCH_ARGS)

# how fast a change reaches the other side under `dossiersync run`, and an idle dossier's cost
bench-latency: setup
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/python tests/benchmarks/bench_latency.py $(BENCH_ARGS)

# many dossiers on one tenant: first sync against one dossier of the same size, idle cost, edits
bench-multi: setup
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/python tests/benchmarks/bench_multi.py $(BENCH_ARGS)

# a sync's cost with nothing changed and with a few changes, against the first sync
bench-changes: setup
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/python tests/benchmarks/bench_changes.py $(BENCH_ARGS)

# a full cycle of 12 dossiers (3 implementations x 4) on 1, 2 and 4 Celery worker processes
bench-distributed: setup
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/python tests/benchmarks/bench_distributed.py $(BENCH_ARGS)

clean:
	rm -rf build $(VENV) .mypy_cache .ruff_cache .pytest_cache demo
