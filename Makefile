# impasto: `make demo` and `make test` set everything up on a fresh machine (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: install demo test lint bench gallery clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test,lint,ray,onnx]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p $(OUT)
	$(BIN)/impasto demo -o $(OUT)/demo.png --force

test: $(STAMP)
	$(BIN)/python -m pytest -q

# ruff's rule set and mypy's strictness live in pyproject.toml ([tool.ruff], [tool.mypy]).
# Both run, so one pass reports every finding; either failing fails the target.
lint: $(STAMP)
	status=0; \
	$(BIN)/ruff check src tests benchmarks scripts || status=1; \
	$(BIN)/mypy src || status=1; \
	exit $$status

gallery: $(STAMP)
	$(BIN)/python scripts/gallery.py --out docs/gallery

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test,lint,ray,onnx,bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(OUT) test-output .pytest_cache .mypy_cache .ruff_cache
