# Suanli — the two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: install run test lint fmt lock migrate demo clean drills

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installs exactly what requirements.lock pins (uv is only the installer; pip works too).
install: $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock

lock: $(BIN)/python
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check apps config tests bench

fmt:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format apps config tests bench

test: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py loaddemo
	$(BIN)/python manage.py runsuanli

# Fault drills (not part of `make test`): real worker, gunicorn and PostgreSQL faults; README "Fault drills".
drills: install
	$(BIN)/python drills/run.py

clean:
	rm -rf $(VENV) var
