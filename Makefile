# rai-lab: `make lab` runs the lab offline, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LATEST := .venv-openai-latest
DATABRICKS := .venv-databricks
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup spark-archive system-deps browser-deps lab grade test test-quick test-main test-openai-latest test-databricks databricks-env jupyter formgrader release cassettes clean

## Every Python process of an environment imports rai_lab first (a .pth file): its __init__ spares each process
## that reads a notebook 1.2 s of CPU (jsonschema's IRI format check; see rai_lab/__init__.py).
define startup_pth
	$(1)/bin/python -c 'import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()["purelib"], "rai_lab_startup.pth").write_text("import importlib.util as _u; _u.find_spec(\"rai_lab\") and __import__(\"rai_lab\")\n")'
endef

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	$(call startup_pth,$(VENV))
	touch $(STAMP)

setup: $(STAMP) spark-archive

## Spark's classes archived for this installation (Java's class-data sharing): every Spark JVM of the kit then
## starts on half the CPU. Once per installation, about a minute; without it Spark starts as before.
spark-archive: $(STAMP)
	@$(BIN)/python -m rai_lab.spark.cds || echo "Spark starts without a class archive (see above); nothing else changes"

## Debian packages, installed when missing and we are root (otherwise the command to run is printed):
## bubblewrap for the grading sandbox (system-deps), chromium for the browser test (browser-deps).
## apt takes one lock: two installs at once (make -j, or two checkouts' makes) make the second fail at once
## ("Could not get lock /var/lib/apt/lists/lock"), so each waits for APT_LOCK, then looks again.
APT_LOCK ?= /tmp/rai-lab-apt.lock
define apt_need
	@if $(2); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		exec 9>>$(APT_LOCK) && flock 9 && if $(2); then :; else \
		echo "installing $(1) (Debian package: $(3))"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 $(1) >/dev/null; fi; \
	else \
		echo "rai-lab needs the Debian package $(1) ($(3)): sudo apt-get install $(1)" >&2; exit 1; \
	fi
endef

system-deps:
	$(call apt_need,bubblewrap,command -v bwrap >/dev/null 2>&1,the grading sandbox)

browser-deps:
	$(call apt_need,chromium,[ -x /usr/lib/chromium/chromium ],the browser test drives it headless)

## Run the French lab headless: replay mode, embedded local Spark, no network.
lab: $(STAMP)
	$(BIN)/rai-lab run --lang fr --mode replay --out out

## Grade the sample class shipped under tests/submissions (the instructor's workflow in one command).
grade: $(STAMP) system-deps
	$(BIN)/rai-lab grade tests/submissions --assignment responsible-ai-fr --out out/grades

## The whole test suite (on every core: pytest-xdist, split as tests/conftest.py says), and beside it the HTTP
## tests again with the newest openai release and the lab through Databricks Connect (its own environment)
## against a local Spark Connect server (each one's output printed when it ends). The three environments'
## dependencies, the classroom's (Debian's nodejs and npm, configurable-http-proxy, the accounts' Python) and
## Spark's class archive, bubblewrap and chromium are made side by side first (pip, apt and npm wait on the network and the disk as much
## as on a core); the project itself goes into each environment one after the other (pip builds it in place).
## It prints how long it took: 14 min 2 s (5a9e01f) and 14 min 3 s (849c3f3) on 2 cores from a fresh clone, quiet (the goal is 15).
test:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -j4 $(STAMP) $(LATEST)/.deps $(DATABRICKS)/.deps classroom-deps spark-archive system-deps browser-deps && \
	$(MAKE) --no-print-directory $(LATEST)/.installed $(DATABRICKS)/.installed && \
	$(MAKE) --no-print-directory -j3 --output-sync=target test-main test-openai-latest test-databricks; status=$$?; \
	took=$$(( $$(date +%s) - start )); echo "make test: $$((took / 60)) min $$((took % 60)) s (exit $$status)"; exit $$status

## The inner loop (about 20 seconds): the tests that start no kernel, no Spark and no browser.
test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "not notebook and not spark and not browser and not databricks"

test-main: $(STAMP) spark-archive system-deps browser-deps classroom-deps
	$(BIN)/python -m pytest -n logical --no-loadscope-reorder --durations=10

$(LATEST)/.deps: pyproject.toml
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade openai "vcrpy==9.4.2" "PyYAML==6.0.3" "pytest==9.2.0"
	touch $@

$(LATEST)/.installed: $(LATEST)/.deps
	$(LATEST)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

test-openai-latest: $(LATEST)/.installed
	@$(LATEST)/bin/python -c "import openai; print('newest openai:', openai.__version__)"
	$(LATEST)/bin/python -m pytest -p no:cacheprovider --basetemp=$$(mktemp -d -t rai-lab-openai-latest-XXXX) -m http tests/azure/test_standin.py tests/azure/test_cassette.py tests/azure/test_quota.py

## Databricks Connect in its own environment (it ships its own pyspark): .venv-databricks/bin/rai-lab run --spark databricks
databricks-env: $(DATABRICKS)/.installed

$(DATABRICKS)/.deps: requirements-databricks.txt requirements-databricks.lock pyproject.toml
	$(PYTHON) -m venv $(DATABRICKS)
	$(DATABRICKS)/bin/python -m pip install --quiet --upgrade pip
	$(DATABRICKS)/bin/python -m pip install --quiet -c requirements-databricks.lock -r requirements-databricks.txt
	touch $@

$(DATABRICKS)/.installed: $(DATABRICKS)/.deps
	$(DATABRICKS)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

test-databricks: $(STAMP) $(DATABRICKS)/.installed
	RAI_LAB_DATABRICKS_PYTHON=$(DATABRICKS)/bin/python $(BIN)/python -m pytest -p no:cacheprovider \
		--basetemp=$$(mktemp -d -t rai-lab-databricks-XXXX) -m databricks tests/test_databricks_connect.py

## The learner's JupyterLab on lab/ (check cells, nbgrader's Validate; no instructor tools), on 127.0.0.1.
PORT ?= 8888
jupyter: $(STAMP)
	$(BIN)/rai-lab jupyter --port $(PORT)

## The instructor's formgrader on the class that `make grade` graded (adjust scores by hand; `make grade` exports them).
FORMGRADER_PORT ?= 8889
formgrader: $(STAMP)
	$(BIN)/rai-lab formgrader --out out/grades --assignment responsible-ai-fr --port $(FORMGRADER_PORT)

## A Spark standalone cluster on 127.0.0.1 (a master and CLUSTER_WORKERS workers of one core) until Ctrl-C, to try
## `rai-lab grade --master spark://127.0.0.1:PORT` (docs/cluster.md).
CLUSTER_WORKERS ?= 2
.PHONY: cluster
cluster: $(STAMP) system-deps
	$(BIN)/python -m rai_lab.grading.cluster.standalone --workers $(CLUSTER_WORKERS)

## A classroom on this machine (needs root): a JupyterHub on 127.0.0.1 for ROSTER (CSV: login,name,language), one
## Unix account each (passwords printed once), nbgrader's exchange, the course released, sealed grading from the
## instructor's page. Ctrl-C or `make classroom-stop` stops it; `rai-lab classroom remove` deletes accounts and course.
## classroom-deps: Debian's nodejs and npm, configurable-http-proxy into .classroom-node, and, when this Python lives
## in a folder the accounts cannot enter (pyenv under /root), .venv-classroom from Debian's python3.11.
.PHONY: classroom classroom-stop classroom-deps
CHP_VERSION := 5.3.0
CLASSROOM_VENV := .venv-classroom
ROSTER ?= roster.csv
CLASSROOM_PORT ?= 8000
classroom: $(STAMP) system-deps classroom-deps
	$(BIN)/rai-lab classroom start $(ROSTER) --port $(CLASSROOM_PORT)

classroom-stop: $(STAMP)
	$(BIN)/rai-lab classroom stop

classroom-deps: $(STAMP)
	$(call apt_need,nodejs npm,command -v npm >/dev/null 2>&1,the classroom's proxy comes from npm)
	@[ -f .classroom-node/.chp-$(CHP_VERSION) ] || { npm install --prefix .classroom-node --no-audit --no-fund --silent \
		configurable-http-proxy@$(CHP_VERSION) && touch .classroom-node/.chp-$(CHP_VERSION); }
	@if $(BIN)/python -c 'import sys; from pathlib import Path; from rai_lab.classroom.course import reachable; \
		sys.exit(0 if reachable(Path(sys.executable)) else 1)'; then :; \
	elif [ ! -f $(CLASSROOM_VENV)/.installed ]; then \
		echo "this Python is private to root: building $(CLASSROOM_VENV) from /usr/bin/python3.11 for the accounts"; \
		$(MAKE) --no-print-directory $(CLASSROOM_VENV)/.installed; fi

$(CLASSROOM_VENV)/.installed: pyproject.toml requirements.lock
	$(call apt_need,python3.11-venv,/usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null,the accounts' Python environment)
	/usr/bin/python3.11 -m venv $(CLASSROOM_VENV)
	$(CLASSROOM_VENV)/bin/python -m pip install --quiet --upgrade pip
	@# Debian's Python is 3.11.2; soupsieve 4 needs 3.11.5: that one pin is left to pip (beautifulsoup4's bounds).
	grep -v '^soupsieve==' requirements.lock > $(CLASSROOM_VENV)/constraints.txt
	$(CLASSROOM_VENV)/bin/python -m pip install --quiet -c $(CLASSROOM_VENV)/constraints.txt -e .
	$(call startup_pth,$(CLASSROOM_VENV))
	touch $@

## Regenerate lab/ from solutions/ (nbgrader generate_assignment).
release: $(STAMP)
	$(BIN)/rai-lab release

## Re-record the shipped cassettes from the rai-lab stand-in (and the teaching cassette of Azure's errors).
cassettes: $(STAMP)
	$(BIN)/rai-lab record --standin --deployment gpt-35-turbo
	$(BIN)/rai-lab record --standin --deployment gpt-4o
	$(BIN)/rai-lab record --teaching

clean:
	rm -rf out $(VENV) $(LATEST) $(DATABRICKS) $(CLASSROOM_VENV) .classroom-node *.egg-info .pytest_cache
