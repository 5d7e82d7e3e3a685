# impasto: `make demo` and `make test` set everything up on a fresh machine (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: install demo test bench gallery clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p $(OUT)
	$(BIN)/impasto demo -o $(OUT)/demo.png --force

test: $(STAMP)
	$(BIN)/python -m pytest -q

gallery: $(STAMP)
	$(BIN)/python scripts/gallery.py --out docs/gallery

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test,bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(OUT) test-output .pytest_cache
