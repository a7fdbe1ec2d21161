# vidseg — every target a newcomer needs. `make demo` and `make test` set up on their own.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vidseg-installed
# The CPU build of torch. On machines where plain PyPI would pick a multi-GB CUDA build,
# point pip at the CPU wheels: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: install test check demo bench lint clean help sample-weights

help:
	@echo "make demo    set up, then run the pipeline on sample_data/ (outputs in runs/demo/)"
	@echo "make test    set up, then run the test suite (tests needing root or services skip)"
	@echo "make check   the full check, as root: also the tests that need root or services"
	@echo "make bench   benchmarks, printed as side-by-side ratios (runs/bench/bench.json)"
	@echo "make lint    ruff"
	@echo "make sample-weights  retrain the small synthetic-data weights in sample_data/weights (~40 min)"
	@echo "make install create $(VENV) with torch (CPU) and vidseg in editable mode"
	@echo "make paper-fsn|paper-scnn|paper-3dfcn|paper-sep3d|paper-segment-tube  a paper's pipeline and its table (SMALL=1: synthetic, CPU; SLURM=1: through vidseg submit); docs/papers.md"

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

# The full check (CI): run as root. Tests that need root or a system service run here and
# fail, rather than skip, when what they need is missing: a small tmpfs for a full disk
# (tests/store/test_full_disk.py), a single-node SLURM (tests/cluster/, started and
# stopped by the tests; tests/cluster/test_paper_fsn.py runs `make paper-fsn SMALL=1 SLURM=1`
# against it) and headless Chromium (tests/viz/test_report_browser.py); their
# Debian packages are installed here when missing.
SLURM_PKGS := slurmctld slurmd slurm-client munge
# The report's browser test (tests/viz/test_report_browser.py): headless Chromium + driver.
BROWSER_PKGS := chromium chromium-driver
check: install
	@if [ "$$(id -u)" != 0 ]; then echo "make check needs root (it mounts a tmpfs, runs SLURM)"; exit 2; fi
	@if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || \
	    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then \
	  echo "installing $(SLURM_PKGS) for the SLURM tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SLURM_PKGS) >/dev/null \
	  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	       --no-install-recommends $(SLURM_PKGS) >/dev/null; } || exit 2; fi
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "installing $(BROWSER_PKGS) for the report's browser test"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(BROWSER_PKGS) >/dev/null \
	  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	       --no-install-recommends $(BROWSER_PKGS) >/dev/null; } || exit 2; fi
	VIDSEG_FULL_CHECK=1 $(BIN)/python -m pytest -q
	$(BIN)/python -m benchmarks.run --only cluster --json runs/bench/cluster.json

demo: install
	$(BIN)/python scripts/demo.py --out runs/demo

bench: install
	$(BIN)/python -m benchmarks.run

# The demo's small models, retrained from seeded synthetic sets (scripts/sample_weights/).
sample-weights: install
	for s in scripts/sample_weights/*.sh; do PATH="$(CURDIR)/$(BIN):$$PATH" bash "$$s" || exit 1; done

include makefiles/papers.mk

lint: install
	$(BIN)/ruff check vidseg_cli tests benchmarks experiments scripts

clean:
	rm -rf runs .pytest_cache .ruff_cache
