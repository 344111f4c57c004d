# The two commands of README.md:
#   make book   build the executed course into _build/html (and say where it is)
#   make test   run every test (what CI runs)
# and for whoever changes rnnkit:
#   make check  the library's own tests only (no book, no grading, no browser), under a minute
SHELL := /bin/bash
PY := .venv/bin/python
JB := .venv/bin/jupyter-book
PORT ?= 8000
# nbgrader and jupyter call tools of the environment by name
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup book serve publish test check exercises bench clean

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

# rnnkit's tests: cells, sequences, modules, heads, losses, optimizers, interop, models, text, data,
# attention, decoding, metrics and language models
LIBRARY_TESTS := $(addprefix tests/,test_cells.py test_sequence.py test_modules.py test_fast_paths.py \
	test_heads.py test_losses.py test_optim.py test_clip.py test_gradcheck.py test_interop.py \
	test_models.py test_errors.py test_text.py test_data.py test_readme.py \
	test_attention.py test_decoding.py test_metrics.py test_lm.py)

check: setup
	@OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:xdist $(LIBRARY_TESTS) $(PYTEST_ARGS)

exercises: setup
	@$(PY) -m tools.release

bench: setup
	@$(PY) bench/run.py

clean:
	rm -rf _build
