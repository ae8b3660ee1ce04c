# Set-up and entry points. `make demo` and `make test` set everything up on a fresh machine
# that has only Python 3.10+; a second call does no set-up work.
#
# GPU users: choose the torch build for your CUDA, e.g.
#   make demo TORCH_SPEC="torch==2.13.0" TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu128"
# The default is the CPU build, pinned, installed before anything that depends on torch (an
# unpinned torch would pull several GB of CUDA packages).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
CORES ?= all
BIN := $(VENV)/bin
SNAKEMAKE := PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --workflow-profile workflow/profiles/default
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: setup demo smoke run report static types quality fast-tests check test hooks slurm-tools browser-tools bench \
	lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[workflow,test,quality]"
	touch $(STAMP)

# An experiment's name (results/<name>/), read from its config file.
experiment = $(shell awk '/^experiment:/ {print $$2; exit}' $(1))
DEMO := $(call experiment,config/config.yaml)

# The workflow, then its HTML report, then where the results are and the headline table.
demo: $(STAMP)
	$(SNAKEMAKE) --cores $(CORES)
	$(SNAKEMAKE) --report results/$(DEMO)/report.html
	$(BIN)/python -m xlprompt headline --tables results/$(DEMO)/tables

smoke: $(STAMP)
	$(SNAKEMAKE) --cores $(CORES) --configfile config/smoke.yaml

# Any other experiment: make run CONFIG=config/cross-model.yaml
run: $(STAMP)
	@test -n "$(CONFIG)" || { echo "make run needs CONFIG=config/<experiment>.yaml"; exit 2; }
	$(SNAKEMAKE) --cores $(CORES) --configfile $(CONFIG)

# The HTML report of the demo (or of CONFIG=...), written to results/<experiment>/report.html: a
# front page with the experiment's config and how to read it, every figure and main table with
# its caption, by category (workflow/report/).
REPORT_CONFIG = $(or $(CONFIG),config/config.yaml)
report: $(STAMP)
	$(SNAKEMAKE) --configfile $(REPORT_CONFIG) --report results/$(call experiment,$(REPORT_CONFIG))/report.html

# The gates before any test: lint and format (ruff), the rules' style (snakefmt) and Snakemake's own
# linter (static, seconds), and types (mypy, [tool.mypy] in pyproject.toml; about 35 s without its cache).
static: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	HF_HUB_OFFLINE=1 $(SNAKEMAKE) --lint

types: $(STAMP)
	$(BIN)/mypy

quality: static types

fast-tests: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" XLPROMPT_PROGRESS=0 $(BIN)/python -m pytest -m "not slow" -q

# Every edit: the static gates, then the type check beside every test that is not an end-to-end run
# (-m "not slow"; docs/tests.md says which tests are where), one on each of two cores.
check: static
	$(MAKE) --no-print-directory -j2 types fast-tests

# The whole suite (what CI's .ci/run calls): the gates first, then every test, end-to-end runs included.
test: $(STAMP) slurm-tools browser-tools quality
	PATH="$(abspath $(BIN)):$$PATH" XLPROMPT_PROGRESS=0 $(BIN)/python -m pytest

# pre-commit runs ruff, ruff format, snakefmt and the fastest tests on every commit (.pre-commit-config.yaml).
hooks: $(STAMP)
	$(BIN)/pre-commit install

# The Slurm tests (tests/test_slurm.py) start a private one-node cluster from Debian's Slurm and
# munge packages: installed here when missing and make runs as root, else those tests are
# skipped and say why (.ci/run sets XLPROMPT_REQUIRE_SLURM=1, where missing tools fail them).
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
slurm-tools:
	@if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
			&& command -v munged >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(SLURM_PACKAGES) (Debian) for the Slurm tests"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(SLURM_PACKAGES) >/dev/null; } || echo "note: apt-get could not install $(SLURM_PACKAGES)"; \
	else \
		echo "note: $(SLURM_PACKAGES) are not installed and make is not root: the Slurm tests will be skipped"; \
	fi

# The report test (tests/test_report.py) opens the HTML report in Debian's headless Chromium:
# installed here when missing and make runs as root, else that test is skipped and says why
# (.ci/run sets XLPROMPT_REQUIRE_BROWSER=1, where a missing browser fails it).
BROWSER_PACKAGES := chromium
browser-tools:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(BROWSER_PACKAGES) (Debian) for the report test"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(BROWSER_PACKAGES) >/dev/null; } || echo "note: apt-get could not install $(BROWSER_PACKAGES)"; \
	else \
		echo "note: $(BROWSER_PACKAGES) is not installed and make is not root: the report test will be skipped"; \
	fi

# Every benchmark (about 9 minutes on 2 cores), then one line per target: value, target, met.
# The demo graph's own timing is a separate, longer run:
#   $(BIN)/python benchmarks/bench_workflow.py --config config/config.yaml
bench: $(STAMP)
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done
	$(BIN)/python benchmarks/summary.py

lint: $(STAMP)
	HF_HUB_OFFLINE=1 $(SNAKEMAKE) --lint

clean:
	rm -rf results logs .snakemake benchmarks/runs
