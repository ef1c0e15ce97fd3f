# encore: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.encore-installed
# torch is pinned first: on the project's CPU machines this pin installs a local CPU
# build, while an open range would pull gigabytes of CUDA packages.
TORCH_PIN ?= torch==2.13.0
DEMO_OUT ?= demo-workspace
PYTEST_ARGS ?=

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/encore demo -w $(DEMO_OUT)

# pytest exit 5 means "no tests ran": treat it as a failure, not a pass.
test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check src tests bench experiments
	$(BIN)/ruff format --check src tests bench experiments
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
