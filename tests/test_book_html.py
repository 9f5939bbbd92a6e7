"""The built book (_build/html, from `make book`), checked as a reader sees it.

- every _toc.yml entry was built, and every notebook page has a working Colab link;
- in a real browser (Debian's chromium, driven by Playwright), the framework switcher
  shows one framework's cells, the choice holds across a reload and on other pages, and
  equations render with no request leaving the machine (MathJax is served from the
  book's own files);
- on a phone (390 px) and a tablet (768 px) the menu button opens the table of contents
  and its links work; the top bar names the book and offers one search;
- on every page: no console errors, no display equation clipped at 1280 px, no tab bar
  with a single tab, and citations that read author-year, e.g. (He et al., 2016).
"""

import contextlib
import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

if not (HTML / "index.html").exists():
    pytest.fail("no built book in _build/html: run `make book` first", pytrace=False)


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for entry in toc["chapters"]]


@pytest.mark.parametrize("entry", toc_files())
def test_every_toc_entry_is_built(entry):
    assert (HTML / f"{entry}.html").is_file(), (
        f"{entry} is in _toc.yml but not in _build/html"
    )


@pytest.mark.parametrize(
    "entry", [e for e in toc_files() if (ROOT / f"{e}.ipynb").exists()]
)
def test_colab_button_points_at_this_repository(entry):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    repo = url.removeprefix("https://github.com/")
    page = (HTML / f"{entry}.html").read_text()
    assert (
        f"https://colab.research.google.com/github/{repo}/blob/main/colab/{entry}.ipynb"
        in page
    )


@contextlib.contextmanager
def serve(directory):
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(directory)
    )
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


class Tab:
    """A browser tab at a given width. Requests may only go to the local server; console
    errors and uncaught exceptions are collected."""

    def __init__(self, browser, base, width=1280, height=720):
        self.base = base
        self.outside, self.errors = [], []
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.page.route("**/*", self._guard)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _guard(self, route):
        if route.request.url.startswith(self.base):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def _console(self, message):
        if message.type == "error":
            self.errors.append(f"console.error: {message.text}")

    def open(self, path):
        self.page.goto(f"{self.base}/{path}", wait_until="networkidle")
        return self.page


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: `make chromium` installs it", pytrace=False
        )
    with serve(HTML) as base, sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield chromium, base
        chromium.close()


@pytest.fixture(scope="module")
def browser_page(browser):
    tab = Tab(*browser)
    yield tab.page, tab.base, tab.outside
    tab.page.close()


@pytest.fixture
def new_tab(browser):
    tabs = []

    def open_tab(width):
        tabs.append(Tab(*browser, width=width))
        return tabs[-1]

    yield open_tab
    for tab in tabs:
        tab.page.close()


def visible_tags(page):
    return page.evaluate(
        """() => Array.from(document.querySelectorAll(
                  '.cell.tag_pytorch, .cell.tag_tensorflow'))
              .filter(c => c.offsetParent !== null)
              .map(c => c.classList.contains('tag_pytorch') ? 'pytorch'
                                                            : 'tensorflow')"""
    )


def test_framework_switcher_choice_applies_and_persists(browser_page):
    page, base, _ = browser_page
    page.goto(f"{base}/chapters/02_addition.html")
    page.evaluate("localStorage.clear()")
    page.reload()
    assert page.locator(".framework-tabs").count() >= 3
    shown = visible_tags(page)
    assert shown and set(shown) == {"pytorch"}, "PyTorch is the default framework"

    page.locator(".framework-tab[data-framework=tensorflow]").first.click()
    shown = visible_tags(page)
    assert "tensorflow" in shown, "choosing TensorFlow shows the TensorFlow cells"
    # PyTorch cells remain only where they have no TensorFlow twin (no tab bar there).
    lone = page.evaluate(
        """() => Array.from(document.querySelectorAll('.cell.tag_pytorch'))
              .filter(c => !c.closest('.framework-tabs')
                              ?.querySelector('.tag_tensorflow'))
              .length"""
    )
    assert shown.count("pytorch") == lone

    page.reload()
    assert visible_tags(page) == shown, "the choice survives a reload"
    page.goto(f"{base}/chapters/01_concatenation.html")
    assert "tensorflow" in visible_tags(page), "and holds on another page"
    page.locator(".framework-tab[data-framework=pytorch]").first.click()
    assert set(visible_tags(page)) == {"pytorch"}


def test_equations_render_offline(browser_page):
    page, base, outside = browser_page
    outside.clear()
    page.goto(f"{base}/chapters/02_addition.html")
    page.wait_for_selector("mjx-container", timeout=20_000)
    assert page.locator("mjx-container").count() > 10
    assert page.locator("mjx-merror").count() == 0, "a TeX error in the chapter"
    assert outside == [], f"the page tried to fetch from outside the book: {outside}"


# --- phones and tablets --------------------------------------------------------------

START = "chapters/02_addition"


@pytest.mark.parametrize("width", [390, 768])
def test_menu_button_opens_the_table_of_contents(new_tab, width):
    target = next(e for e in reversed(toc_files()) if e.startswith("chapters/"))
    assert target != START
    page = new_tab(width).open(f"{START}.html")

    bar = page.locator(".bd-header-article")
    assert bar.locator(".logo__title").is_visible(), "the top bar names the book"
    searches = page.evaluate(
        """() => Array.from(document.querySelectorAll(
                  '.search-button__button, .search-button-field, input[type=search]'))
              .filter(e => e.offsetParent !== null).length"""
    )
    assert searches == 1, f"{searches} search entries in view, want one"

    toc = page.locator("nav.bd-docs-nav")  # the theme moves it into a <dialog>
    link = toc.locator(f"a[href$='{Path(target).name}.html']")
    assert not link.is_visible(), "the table of contents starts closed"
    bar.locator(".primary-toggle").click()
    link.wait_for(state="visible", timeout=5_000)
    box = toc.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (
        f"the table of contents is not on screen: {box}"
    )
    link.click(timeout=5_000)
    page.wait_for_url(f"**/{target}.html", timeout=10_000)
    assert page.locator("article.bd-article h1").first.is_visible()


# --- every page, at 1280 px -----------------------------------------------------------

PAGES = [f"{e}.html" for e in toc_files()] + ["search.html", "genindex.html"]

REPORT = """() => {
  const displayed = Array.from(
    document.querySelectorAll('mjx-container[display="true"]'));
  const clipped = displayed.filter(m => {
    const box = m.getBoundingClientRect();
    const column = m.parentElement.getBoundingClientRect();
    const scrolls = ['auto', 'scroll'].includes(getComputedStyle(m).overflowX);
    return box.right > column.right + 1
        || (m.scrollWidth > m.clientWidth + 1 && !scrolls);
  }).map(m => (m.closest('section[id]') || {}).id + ': '
              + m.textContent.slice(0, 60));
  const prose = Array.from(document.querySelectorAll(
      'article.bd-article :is(p, li, figcaption)'))
    .filter(e => !e.closest('.cell, pre'));
  return {
    displayed: displayed.length,
    clipped: clipped,
    tabs: Array.from(document.querySelectorAll('.framework-tabs'))
      .map(b => b.querySelectorAll('.framework-tab').length),
    // textContent, not innerText: a citation inside a folded solution is not rendered
    // and its innerText is empty.
    citations: Array.from(document.querySelectorAll('.bibtex-citation'))
      .map(c => c.textContent.replace(/\\s+/g, ' ').trim()),
    entries: document.querySelectorAll('.citation-list .citation').length,
    prose: prose.map(e => e.innerText).join('\\n'),
  };
}"""


@pytest.fixture(scope="module")
def page_reports(browser):
    """Each page opened once at 1280 px, MathJax done: what the checks below look at."""
    tab = Tab(*browser, width=1280, height=900)
    reports = {}
    for path in PAGES:
        tab.errors.clear()
        page = tab.open(path)
        if page.locator("script[src*='mathjax']").count():
            page.wait_for_function(
                "() => window.MathJax?.startup?.promise", timeout=20_000
            )
            page.evaluate("() => MathJax.startup.promise.then(() => true)")
        reports[path] = page.evaluate(REPORT) | {
            "errors": list(tab.errors),
            "outside": list(tab.outside),
        }
    tab.page.close()
    return reports


@pytest.mark.parametrize("path", PAGES)
def test_no_console_errors(page_reports, path):
    report = page_reports[path]
    assert report["errors"] == [], f"{path} logs errors: {report['errors']}"
    assert report["outside"] == [], f"{path} fetches from outside: {report['outside']}"


@pytest.mark.parametrize("path", PAGES)
def test_no_display_equation_is_clipped(page_reports, path):
    clipped = page_reports[path]["clipped"]
    assert clipped == [], f"{path}: equations wider than the column: {clipped}"


def test_display_equations_were_checked(page_reports):
    assert sum(r["displayed"] for r in page_reports.values()) > 0


@pytest.mark.parametrize("path", PAGES)
def test_no_tab_bar_with_a_single_tab(page_reports, path):
    tabs = page_reports[path]["tabs"]
    assert all(n >= 2 for n in tabs), (
        f"{path}: a framework tab bar with {min(tabs)} tab (a cell without its twin)"
    )


LABEL = re.compile(r"\[[A-Za-z][A-Za-z+]*\d{2,4}\]")  # [HZRS16], [LDollarG+17]
# (He et al., 2016), (He et al., 2016, Lin et al., 2017), He et al. (2016)
AUTHOR_YEAR = re.compile(r"\([A-Z][^()]*\d{4}[a-z]?\)|[A-Z][^()]* \(\d{4}[a-z]?\)")


@pytest.mark.parametrize("path", PAGES)
def test_citations_read_author_year(page_reports, path):
    report = page_reports[path]
    assert LABEL.findall(report["prose"]) == [], f"{path}: label-style citations"
    odd = [c for c in report["citations"] if not AUTHOR_YEAR.fullmatch(c)]
    assert odd == [], f"{path}: citations that do not read author-year: {odd}"
    if path == "references.html":
        assert report["entries"] > 0, "the references page lists the works"


def test_the_book_cites(page_reports):
    cited = [c for r in page_reports.values() for c in r["citations"]]
    assert cited, "no {cite} role rendered anywhere"
