# Two entry points on a fresh machine: `make run` (the main job) and `make test` (`make lint` for style).
# Both set everything up first (system packages, .venv, the project): scripts/setup.sh.
.PHONY: setup run dev test lint
VENV := .venv/bin

setup:
	./scripts/setup.sh

run: setup
	$(VENV)/autorag run $(AUDIO)

# The UI shares its storage with the main job (AUTORAG_DATA_DIR/dagster), so its runs show up.
# Its dagster.yaml (written or brought up to date first) limits the `gpu` pool to one step at a time.
DAGSTER_HOME ?= $(abspath $(or $(AUTORAG_DATA_DIR),data))/dagster

dev: setup
	$(VENV)/python -m autorag_dagster.runner $(DAGSTER_HOME)
	DAGSTER_HOME=$(DAGSTER_HOME) $(VENV)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

test: setup
	$(VENV)/python -m pytest

# Style and lint (ruff, configured in pyproject.toml): what CI checks before the tests.
lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
