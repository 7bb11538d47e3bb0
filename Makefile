# Every target installs what it needs into .venv first, so a fresh clone needs only python3 (3.11+).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench clean fuzz schemas

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# One pytest worker per core by default (BENCHMARKS.md, "Test suite"); TEST_WORKERS=0 runs serially.
# worksteal: a worker that runs out of tests takes pending ones from the other, so a few long
# tests (subprocesses, concurrency) queued late on one worker do not leave the other core idle.
TEST_WORKERS ?= auto

test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# The fuzz tests with many more examples than `make test` runs (SEPA_ENGINE_FUZZ_EXAMPLES,
# 40 by default); keep every crasher found under tests/testdata/crashers/ (see its README).
FUZZ_EXAMPLES ?= 2000
fuzz: install
	SEPA_ENGINE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:randomly tests/boundary/test_fuzz_parsers.py tests/boundary/test_fuzz_entry_points.py
	# The API against its OpenAPI document (tests/api/test_schemathesis_api.py), 4 examples in make test.
	SEPA_ENGINE_API_FUZZ_EXAMPLES=200 $(PY) -m pytest -q -p no:randomly tests/api/test_schemathesis_api.py
	# The accounts model (tests/services/test_accounts_model.py): 300 sequences of 50 steps; and
	# 300 groups of enqueues over several creditors against the same calls one at a time.
	SEPA_ENGINE_MODEL_EXAMPLES=300 SEPA_ENGINE_MODEL_STEPS=50 $(PY) -m pytest -q -p no:randomly tests/services/test_accounts_model.py tests/api/test_enqueue_groups_model.py

# The gates CI runs beside the tests (.ci/run): style and real problems, types, layer order.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# schemas/*.json and schemas/accounts/*.json from the input models (services/inputs.py,
# account_inputs.py); tests/services/test_input_models.py fails when they drift.
schemas: install
	$(PY) -m sepa_engine.services.input_schemas --write

demo: install
	@bash scripts/demo.sh

bench: install
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) var bench/out .pytest_cache
