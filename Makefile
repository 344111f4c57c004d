# The two commands of README.md:
#   make book   build the executed course into _build/html (and say where it is)
#   make test   run every test
SHELL := /bin/bash
PY := .venv/bin/python
JB := .venv/bin/jupyter-book
PORT ?= 8000
# nbgrader and jupyter call tools of the environment by name
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup book serve publish test exercises bench clean

setup:
	@tools/setup.sh

book: setup
	@tools/build_book.sh

serve: book
	@echo "serving the course on http://127.0.0.1:$(PORT)/ (Ctrl-C to stop)"
	@$(PY) -m http.server --bind 127.0.0.1 --directory _build/html $(PORT)

# Push the built site to the gh-pages branch (the Pages workflow is the other way to publish).
publish: book
	@test -x .venv/bin/ghp-import || $(PY) -m pip install -q ghp-import==2.1.0
	@.venv/bin/ghp-import --no-jekyll --push --force _build/html
	@echo "published _build/html to the gh-pages branch"

# Two workers; each test file stays in one worker, so a module's shared fixture (the built book,
# the graded corpus, each graded assignment) is made once.
test: setup
	@tools/setup.sh test
	@OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

exercises: setup
	@$(PY) -m tools.release

bench: setup
	@$(PY) bench/run.py

clean:
	rm -rf _build
