"""The book as one PDF, made offline from the built HTML book (`make book`).

    python tools/pdf.py [--html _build/html] [--out _build/pdf/feature-fusion.pdf]

Why not `jupyter-book build . --builder singlehtml`: with this book's extensions it
stops with "BootstrapHTML5Translator departing unknown node type: HideCodeCellNode":
sphinx-exercise 1.2.1 registers its nodes' visitors for `singlehtml` by name, so Sphinx
looks up that builder's visitors in the `singlehtml` table only, where myst-nb (which
registers for `html`) has none for its folded cells. It would also be a second,
differently configured build of the same pages. Instead this script joins
the pages that `make book` wrote, in _toc.yml's order, into one document (`assemble`):
each page's <article>, its relative URLs rewritten to the site root, links between pages
turned into links inside the PDF, a page break before each chapter. Chromium (Debian's,
as in tests/test_book_html.py) driven by Playwright then prints it (`print_pdf`), served
from a local HTTP server with every outside request blocked, after MathJax (the book's
own copy in _vendor/) has finished typesetting: the script awaits
`MathJax.startup.promise`, the web fonts and every image.

For print (PRINT_CSS, PRINT_JS): navigation, buttons and the tab bars are hidden; the
PyTorch/TensorFlow pairs show both cells one after the other, each under its label
("PyTorch", "TensorFlow"); sphinx-design tabs show every tab's content under its label;
folded cells and solutions are unfolded; figures and wide equations are scaled to the
page width; figures, equations and code cells are not split across pages.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html as htmllib
import http.server
import json
import posixpath
import re
import shutil
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PRINT_PAGE = "__print__.html"
PRINT_WIDTH_PX = round((210 - 28) / 25.4 * 96)  # A4 less @page's side margins, CSS px

PRINT_CSS = """
@page { size: A4; margin: 16mm 14mm 18mm 14mm; }
html, body { background: #fff !important; }
body { font-size: 10.5pt; }
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-header-article,
.header-article, .prev-next-area, .bd-footer, .bd-footer-article, .bd-footer-content,
footer, .headerlink, .copybtn, .toggle-button, .framework-tabbar, .sd-tab-set > label,
.pst-scrollable-table-container::-webkit-scrollbar, .search-button-field,
.skip-link, #pst-back-to-top, .back-to-top { display: none !important; }
.bd-main, .bd-content, .bd-article-container, .bd-article, .bd-page-width {
  max-width: none !important; width: auto !important; margin: 0 !important;
  padding: 0 !important; overflow: visible !important; }
.pdf-chapter { break-before: page; }
/* sphinx-book-theme hides each page's first h1 in print (it prints its own title) */
.bd-main .bd-content .bd-article .pdf-chapter h1:first-of-type {
  display: block !important; font-size: 22pt; margin-bottom: 0.8em; }
.pdf-title { break-after: page; text-align: center; padding-top: 30vh; }
.pdf-title h1 { font-size: 28pt; }
h1, h2, h3 { break-after: avoid; }
.bd-article h2 { font-size: 15pt !important; }
.bd-article h3 { font-size: 12.5pt !important; }
details.hide > summary { display: none !important; }
img, svg, figure img { max-width: 100% !important; height: auto !important; }
figure, .cell_output img, .math-wrapper, mjx-container[display="true"], table,
.framework-print-label { break-inside: avoid; }
div.highlight pre { white-space: pre-wrap; word-break: break-word; font-size: 8.5pt;
  overflow: visible !important; }
.output pre, .cell_output pre { white-space: pre-wrap; font-size: 8.5pt; }
.cell { break-inside: avoid; }
mjx-container[display="true"] { overflow: visible !important; max-width: 100%; }
.framework-tabs > .cell[hidden] { display: block !important; }
.framework-print-label {
  font-weight: 600; font-size: 9pt; margin: 0.6em 0 0.1em; color: #2a6fdb;
  break-after: avoid; }
.sd-tab-set > .sd-tab-content { display: block !important; }
.sd-tab-print-label { font-weight: 600; font-size: 9pt; margin-top: 0.6em; }
details > *, .toggle-hidden { visibility: visible !important; opacity: 1 !important;
  height: auto !important; }
"""

# Runs in the page once it has loaded (after framework-tabs.js built its tab blocks).
PRINT_JS = """
() => {
  document.querySelectorAll('.framework-tabs').forEach(block => {
    block.querySelectorAll(':scope > .cell').forEach(cell => {
      cell.hidden = false;
      const fw = cell.classList.contains('tag_pytorch') ? 'PyTorch' : 'TensorFlow';
      const label = document.createElement('div');
      label.className = 'framework-print-label';
      label.textContent = fw;
      block.insertBefore(label, cell);
    });
  });
  document.querySelectorAll('.sd-tab-set > label').forEach(label => {
    const content = label.nextElementSibling;
    if (!content) return;
    const title = document.createElement('div');
    title.className = 'sd-tab-print-label';
    title.textContent = label.textContent.trim();
    content.insertBefore(title, content.firstChild);
  });
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden').forEach(e => {
    e.classList.remove('toggle-hidden');
  });
  // a display equation wider than the page is set in a smaller size until it fits
  const width = document.querySelector('.bd-article').clientWidth;
  let shrunk = 0;
  document.querySelectorAll('mjx-container[display="true"]').forEach(m => {
    const math = m.querySelector('mjx-math') || m;
    const w = math.getBoundingClientRect().width;
    if (w > width) {
      m.style.fontSize = (98 * width / w).toFixed(1) + '%';
      shrunk++;
    }
  });
  return {
    shrunkEquations: shrunk,
    frameworkCells: document.querySelectorAll('.framework-tabs > .cell').length,
    hiddenFrameworkCells:
      document.querySelectorAll('.framework-tabs > .cell[hidden]').length,
  };
}
"""

WAIT_JS = """
async () => {
  for (let i = 0; i < 600 && !(window.MathJax && MathJax.startup
       && MathJax.startup.promise); i++) {
    await new Promise(r => setTimeout(r, 50));
  }
  const hasMath = document.querySelector('.math') !== null;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  } else if (hasMath) {
    return {error: 'MathJax did not start'};
  }
  await document.fonts.ready;
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
    new Promise(r => { img.onload = img.onerror = r; })));
  return {
    equations: document.querySelectorAll('mjx-container').length,
    mathErrors: document.querySelectorAll('mjx-merror, merror').length,
    rawMath: Array.from(document.querySelectorAll('.math')).filter(
      e => !e.querySelector('mjx-container')).length,
    brokenImages: Array.from(document.images).filter(
      img => !img.naturalWidth).map(img => img.getAttribute('src')),
  };
}
"""

_URL_ATTR = re.compile(r'\b(src|href)="([^"]*)"')
_ARTICLE = re.compile(r'<article class="bd-article"[^>]*>(.*?)</article>', re.S)
_HEAD = re.compile(r"<head>(.*?)</head>", re.S)


def toc_docnames(root: Path = ROOT) -> list[str]:
    """The pages of _toc.yml in reading order: ["chapters/00_introduction", ...]."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for entry in toc.get("chapters", [])]


def anchor(docname: str) -> str:
    """The id of a page's section in the joined document."""
    return "pdf-" + re.sub(r"[^A-Za-z0-9_-]", "-", docname)


def rewrite_urls(fragment: str, page: str, docnames: list[str]) -> str:
    """Rewrite the relative src/href URLs of `fragment`, written for the page at
    `page` (e.g. "chapters/01_concatenation.html"), for a document at the site root.
    Links to a page of the book become links inside the joined document."""
    inside = {f"{d}.html": anchor(d) for d in docnames}
    base = posixpath.dirname(page)

    def fix(m):
        attr, url = m.group(1), htmllib.unescape(m.group(2))
        if not url or url.startswith(("#", "/", "data:")) or re.match(r"[a-z]+:", url):
            if attr == "href" and url.startswith("#"):
                return m.group(0)
            return m.group(0)
        path, _, frag = url.partition("#")
        path = path.split("?")[0] if attr == "href" and path.endswith(".html") else path
        target = posixpath.normpath(posixpath.join(base, path)) if path else page
        if attr == "href" and target in inside:
            return f'href="#{frag or inside[target]}"'
        return f'{attr}="{htmllib.escape(target + ("#" + frag if frag else ""))}"'

    return _URL_ATTR.sub(fix, fragment)


def assemble(html_dir: Path, docnames: list[str], title: str, author: str) -> str:
    """One HTML document: the head of the first page, a title page, then each page's
    <article> in a section with a page break before it."""
    pages = []
    head = None
    for doc in docnames:
        page = f"{doc}.html"
        text = (html_dir / page).read_text(encoding="utf-8")
        article = _ARTICLE.search(text)
        if not article:
            raise SystemExit(
                f"pdf: {html_dir / page} has no <article class=bd-article>"
            )
        if head is None:
            head = rewrite_urls(_HEAD.search(text).group(1), page, docnames)
        body = rewrite_urls(article.group(1), page, docnames)
        pages.append(
            f'<section class="pdf-chapter" id="{anchor(doc)}">{body}</section>'
        )
    head = re.sub(
        r"<title>.*?</title>",
        f"<title>{htmllib.escape(title)}</title>",
        head,
        flags=re.S,
    )
    cover = (
        f'<section class="pdf-title"><h1>{htmllib.escape(title)}</h1>'
        f"<p>{htmllib.escape(author)}</p></section>"
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head>{head}<style>{PRINT_CSS}</style></head>'
        # the elements the theme's scripts observe, so they raise no error
        '<body><div class="sbt-scroll-pixel-helper"></div>'
        '<div class="bd-sidebar-secondary"></div><div class="bd-page-width">'
        '<main class="bd-main"><div class="bd-content">'
        '<div class="bd-article-container"><article class="bd-article">'
        f"{cover}{''.join(pages)}</article></div></div></main></div></body></html>"
    )


@contextlib.contextmanager
def serve(directory: Path, extra: dict[str, str]):
    """A local HTTP server for `directory`; `extra` maps paths to generated pages."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            name = self.path.lstrip("/").split("?")[0]
            if name in extra:
                body = extra[name].encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


FOOTER = (
    '<div style="font-size:8pt;width:100%;text-align:center;color:#555">'
    '<span class="pageNumber"></span></div>'
)


def print_pdf(site: Path, document: str, out: Path, timeout_s: float = 300) -> dict:
    """Print `document` (HTML whose URLs are relative to `site`) to the PDF `out` with
    Chromium, after MathJax has typeset it. Returns what the page reported: equations
    typeset, MathJax errors, math left raw, broken images, framework cells shown, and
    requests that tried to leave the machine."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with serve(site, {PRINT_PAGE: document}) as base, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            # laid out at the printed width (A4 less the margins), so that what is
            # measured before printing (wide equations) is what gets printed
            page = browser.new_page(viewport={"width": PRINT_WIDTH_PX, "height": 1000})
            page.set_default_timeout(timeout_s * 1000)
            outside = []

            def only_local(route):
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.emulate_media(media="print")
            page.goto(f"{base}/{PRINT_PAGE}", wait_until="load")
            report = page.evaluate(WAIT_JS)
            report.update(page.evaluate(PRINT_JS))
            page.pdf(
                path=str(out),
                format="A4",
                print_background=True,
                prefer_css_page_size=True,
                display_header_footer=True,
                header_template="<span></span>",
                footer_template=FOOTER,
            )
            report.update(outside=outside, pageErrors=errors)
        finally:
            browser.close()
    report["pages"] = count_pages(out)
    return report


def count_pages(pdf: Path) -> int:
    """Pages of a PDF as Chromium writes it (one `/Type /Page` object per page)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf.read_bytes()))


def problems(report: dict) -> list[str]:
    """What makes a print unacceptable, in words (empty when it is fine)."""
    found = []
    if report.get("error"):
        found.append(report["error"])
    if report.get("mathErrors"):
        found.append(f"{report['mathErrors']} MathJax errors")
    if report.get("rawMath"):
        found.append(f"{report['rawMath']} equations left untypeset")
    if report.get("brokenImages"):
        found.append(f"broken images: {report['brokenImages'][:5]}")
    if report.get("hiddenFrameworkCells"):
        found.append(f"{report['hiddenFrameworkCells']} framework cells still hidden")
    if report.get("outside"):
        found.append(f"requests left the machine: {report['outside'][:5]}")
    if report.get("pageErrors"):
        found.append(f"page errors: {report['pageErrors'][:3]}")
    return found


def main(argv: list[str] | None = None) -> int:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "_build" / "pdf" / "feature-fusion.pdf"
    )
    args = parser.parse_args(argv)
    if not (args.html / "index.html").exists():
        raise SystemExit(f"pdf: no built book in {args.html}: run `make book` first")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    docs = toc_docnames()
    document = assemble(args.html, docs, config["title"], config.get("author", ""))
    report = print_pdf(args.html, document, args.out)
    print(json.dumps({k: v for k, v in report.items() if v}, indent=1))
    bad = problems(report)
    if bad:
        print("pdf: " + "; ".join(bad), file=sys.stderr)
        return 1
    print(f"pdf: {args.out} ({report['pages']} pages, {report['equations']} equations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
