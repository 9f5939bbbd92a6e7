"""The built book (_build/html, from `make book`), checked as a reader sees it.

- every _toc.yml entry was built, and every notebook page has a working Colab link;
- in a real browser (Debian's chromium, driven by Playwright), the framework switcher shows one
  framework's cells, the choice holds across a reload and on other pages, and equations render
  with no request leaving the machine (MathJax is served from the book's own files).
"""

import contextlib
import functools
import http.server
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
    assert (HTML / f"{entry}.html").is_file(), f"{entry} is in _toc.yml but not in _build/html"


@pytest.mark.parametrize("entry", [e for e in toc_files() if (ROOT / f"{e}.ipynb").exists()])
def test_colab_button_points_at_this_repository(entry):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    repo = url.removeprefix("https://github.com/")
    page = (HTML / f"{entry}.html").read_text()
    assert f"https://colab.research.google.com/github/{repo}/blob/main/{entry}.ipynb" in page


@contextlib.contextmanager
def serve(directory):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def browser_page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make chromium` installs it", pytrace=False)
    with serve(HTML) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()
        outside = []

        def guard(route):
            if route.request.url.startswith(base):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", guard)
        yield page, base, outside
        browser.close()


def visible_tags(page):
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('.cell.tag_pytorch, .cell.tag_tensorflow'))
              .filter(c => c.offsetParent !== null)
              .map(c => c.classList.contains('tag_pytorch') ? 'pytorch' : 'tensorflow')"""
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
    # PyTorch cells remain only where a block has no TensorFlow twin.
    lone = page.evaluate(
        """() => Array.from(document.querySelectorAll('.framework-tabs'))
              .filter(b => !b.querySelector('.tag_tensorflow')).length"""
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
