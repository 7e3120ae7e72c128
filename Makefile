# rai-lab: `make lab` runs the lab offline, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LATEST := .venv-openai-latest
DATABRICKS := .venv-databricks
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup system-deps lab grade test test-main test-openai-latest test-databricks databricks-env jupyter release cassettes clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## Debian packages the grader needs: bubblewrap (its sandbox). Installed when missing and we are root.
system-deps:
	@if command -v bwrap >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing bubblewrap (the grading sandbox)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	else \
		echo "rai-lab grade needs bubblewrap: sudo apt-get install bubblewrap (or your distribution's package)" >&2; exit 1; \
	fi

## Run the French lab headless: replay mode, embedded local Spark, no network.
lab: $(STAMP)
	$(BIN)/rai-lab run --lang fr --mode replay --out out

## Grade the sample class shipped under tests/submissions (the instructor's workflow in one command).
grade: $(STAMP) system-deps
	$(BIN)/rai-lab grade tests/submissions --assignment responsible-ai-fr --out out/grades

## The whole test suite, then the HTTP tests again with the newest openai release, then the lab
## through Databricks Connect (its own environment) against a local Spark Connect server.
test: test-main test-openai-latest test-databricks

test-main: $(STAMP) system-deps
	$(BIN)/python -m pytest

$(LATEST)/.installed: pyproject.toml
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade openai "vcrpy==9.4.2" "PyYAML==6.0.3" "pytest==9.2.0"
	$(LATEST)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

test-openai-latest: $(LATEST)/.installed
	@$(LATEST)/bin/python -c "import openai; print('newest openai:', openai.__version__)"
	$(LATEST)/bin/python -m pytest -m http tests/test_standin.py tests/test_cassette.py

## Databricks Connect in its own environment (it ships its own pyspark): .venv-databricks/bin/rai-lab run --spark databricks
databricks-env: $(DATABRICKS)/.installed

$(DATABRICKS)/.installed: requirements-databricks.txt requirements-databricks.lock pyproject.toml
	$(PYTHON) -m venv $(DATABRICKS)
	$(DATABRICKS)/bin/python -m pip install --quiet --upgrade pip
	$(DATABRICKS)/bin/python -m pip install --quiet -c requirements-databricks.lock -r requirements-databricks.txt
	$(DATABRICKS)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

test-databricks: $(STAMP) $(DATABRICKS)/.installed
	RAI_LAB_DATABRICKS_PYTHON=$(DATABRICKS)/bin/python $(BIN)/python -m pytest -m databricks tests/test_databricks_connect.py

## JupyterLab on the learner notebooks.
jupyter: $(STAMP)
	$(BIN)/jupyter lab $(ALLOW_ROOT) lab/

## Regenerate lab/ from solutions/ (nbgrader generate_assignment).
release: $(STAMP)
	$(BIN)/rai-lab release

## Re-record the shipped cassettes from the rai-lab stand-in (and the teaching cassette of Azure's errors).
cassettes: $(STAMP)
	$(BIN)/rai-lab record --standin --deployment gpt-35-turbo
	$(BIN)/rai-lab record --standin --deployment gpt-4o
	$(BIN)/rai-lab record --teaching

clean:
	rm -rf out $(VENV) $(LATEST) $(DATABRICKS) *.egg-info .pytest_cache
