# The README's two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := app
WORKERS ?= 4

.PHONY: run test install install-test migrate demo lint bench serve clean

$(BIN)/flask: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(BIN)/flask

$(BIN)/pytest: $(BIN)/flask
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/pytest

install: $(BIN)/flask
install-test: $(BIN)/pytest

## make run: install, migrate, load the demo on first run, serve http://127.0.0.1:5000 with the
## job worker beside it (large exports run there); Ctrl-C stops both
run: install
	$(BIN)/flask db upgrade
	@test -f instance/.demo-loaded || ($(BIN)/flask seed demo && touch instance/.demo-loaded)
	$(BIN)/flask jobs worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
		$(BIN)/flask run --host 127.0.0.1 --port 5000

## make test: install test dependencies and run the whole suite — the unit and integration tests
## on every core (pytest-xdist), then PostgreSQL, the browser and the served app, which start
## servers, on two workers a file each (--dist loadfile: a module's servers are its own; half of
## their time is waiting on the servers, so two files at once took 7.8 min where one took 10.4)
JOBS ?= auto
SERVER_JOBS ?= 2
test: install-test
	$(BIN)/python -m pytest -n $(JOBS) tests/unit tests/integration $(PYTEST_ARGS)
	$(BIN)/python -m pytest -n $(SERVER_JOBS) --dist loadfile tests --ignore=tests/unit --ignore=tests/integration $(PYTEST_ARGS)

migrate: install
	$(BIN)/flask db upgrade

demo: install
	$(BIN)/flask db upgrade
	$(BIN)/flask seed demo
	@mkdir -p instance && touch instance/.demo-loaded

## gunicorn on 127.0.0.1:8000 (DATABASE_URL selects PostgreSQL) and one job worker
serve: install
	$(BIN)/flask db upgrade
	$(BIN)/flask jobs worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
		$(BIN)/gunicorn --workers $(WORKERS) --timeout 60 --bind 127.0.0.1:8000 'app:create_app()'

lint: install-test
	$(BIN)/ruff check .

bench: install-test
	$(BIN)/python bench/import_template.py
	$(BIN)/python bench/approval.py

clean:
	rm -rf $(VENV) instance/certoffice.db* instance/.demo-loaded
