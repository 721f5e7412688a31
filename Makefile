# The two commands of the README's quick start: `make demo` and `make test`.
# Each creates its own virtualenv (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test tools lint man bench docs clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	# An editable install leaves out the man pages: link them where man finds them for
	# .venv/bin on PATH (share/man beside it).
	for s in 1 5 7; do mkdir -p $(VENV)/share/man/man$$s && \
	  ln -sf $(CURDIR)/man/*.$$s $(VENV)/share/man/man$$s/; done
	touch $@

demo: $(BIN)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" bash demo/demo.sh

tools:
	bash tests/services/tools.sh

test: $(BIN)/.installed tools
	# The tests start `ama` and `ama-server` in many processes: compile their modules once,
	# here, since with PYTHONDONTWRITEBYTECODE set each process would compile them again.
	$(BIN)/python -m compileall -q ama remote
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -n 2 --durations=25 $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check ama remote tests bench
	mkdir -p build/mypy && ln -sfn ../../remote build/mypy/ama_remote
	$(BIN)/mypy

man: $(BIN)/.installed
	$(BIN)/python -m ama.cli.manpages man
	for s in 1 5 7; do ln -sf $(CURDIR)/man/*.$$s $(VENV)/share/man/man$$s/; done

# The Python API's reference, from its docstrings; a warning fails the build.
DOCS_DIR ?= build/api
docs: $(BIN)/.installed
	$(BIN)/python -W error -m pdoc --docformat restructuredtext -o $(DOCS_DIR) ama.api ama.filesystem

bench: $(BIN)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
