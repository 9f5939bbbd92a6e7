# The two commands:  make book  (HTML in _build/html)   make test  (everything CI runs)
# Each creates or reuses the virtual environment from requirements.txt by itself.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# Strict nbval: every stored text output is compared; sanitize.cfg masks versions and timings.
NBVAL   = $(BIN)/pytest --nbval --nbval-current-env --nbval-sanitize-with sanitize.cfg -p no:cacheprovider chapters/

.PHONY: env chromium book book-student student-bundle test test-grading lint unit nbval html-checks stamp run run-all colab pdf site compat compat-colab compat-oldest clean

env: $(VENV)/.installed _vendor/mathjax/VERSION

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

_vendor/mathjax/VERSION: tools/fetch_mathjax.sh
	bash tools/fetch_mathjax.sh

# Debian's chromium for the browser test (Playwright's own browser download cannot work offline).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

book: env
	rm -rf _build/html
	$(BIN)/jupyter-book build . -W -n --keep-going

# Instructors (instructors.md): the student edition, made by nbgrader's ClearSolutions from
# the exercises' markup. The HTML book without solutions, in _build/student/_build/html
# (its Colab buttons open colab/student/), and the student notebooks zipped.
book-student: env
	$(BIN)/python tools/book.py student _build/student
	$(BIN)/jupyter-book build _build/student -W -n --keep-going

student-bundle: env
	$(BIN)/python tools/book.py bundle _build/student-notebooks.zip

lint: env
	$(BIN)/ruff check .

# tests/test_grading.py is among them: nbgrader generates and autogrades the introduction;
# tests/test_publishing.py prints a tiny PDF with chromium.
unit: env chromium
	$(BIN)/pytest -q -p no:cacheprovider tests/ --ignore=tests/test_book_html.py

# Slower (a few minutes per chapter): nbgrader generates and autogrades every chapter.
test-grading: env
	FUSION_GRADE_ALL=1 $(BIN)/pytest -q -p no:cacheprovider tests/test_grading.py

# Run twice: the second strict run proves the stored outputs survive another machine. It
# limits oneDNN (torch and TF) and torch's own kernels to AVX2, which orders sums as an
# AVX2 CPU would; training outputs then pass only through the `approx` rule
# (tools/nbval_approx.py). Both runs print each chapter's time.
OTHER_CPU = ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
nbval: env
	$(NBVAL)
	$(OTHER_CPU) $(NBVAL) -q

html-checks: env chromium
	$(BIN)/pytest -q -p no:cacheprovider tests/test_book_html.py

test: lint unit nbval book html-checks

# Notebook maintenance (see README): re-stamp setup cells, re-execute in place.
stamp: env
	$(BIN)/python tools/book.py stamp
	$(BIN)/python tools/colab.py

run: env
	$(BIN)/python tools/book.py execute $(NB)
	$(BIN)/python tools/colab.py

run-all: env
	$(BIN)/python tools/book.py execute --all
	$(BIN)/python tools/colab.py

# The Colab edition (colab/, opened by the book's Colab button): regenerated from the chapters.
colab: env
	$(BIN)/python tools/colab.py

# The whole book as one PDF, _build/pdf/feature-fusion.pdf (tools/pdf.py): the pages of the
# HTML book joined in _toc.yml's order and printed by Chromium once MathJax has typeset them.
pdf: book chromium
	$(BIN)/python tools/pdf.py --html _build/html --out _build/pdf/feature-fusion.pdf

# The static site .github/workflows/publish.yml deploys: the book at /, the student edition
# at /student/, the PDF at /feature-fusion.pdf.
site: book book-student pdf
	rm -rf _build/site && mkdir -p _build/site
	cp -r _build/html/. _build/site/
	cp -r _build/student/_build/html _build/site/student
	cp _build/pdf/feature-fusion.pdf _build/site/
	touch _build/site/.nojekyll

# Compatibility (tools/compat.py; weekly in .github/workflows/compat.yml). compat-colab:
# Colab's versions (requirements-colab.txt, Python 3.13, in _build/venv-colab): library tests
# and every chapter under nbval. compat-oldest: the lower bounds of pyproject.toml
# (requirements-oldest.txt, Python 3.11, in _build/venv-oldest): library tests. Each downloads
# about 4 GB the first time (PyPI's Linux torch brings its CUDA libraries, as on Colab).
compat: compat-colab compat-oldest

compat-colab:
	$(PYTHON) tools/compat.py colab

compat-oldest:
	$(PYTHON) tools/compat.py oldest

clean:
	rm -rf _build
