"""The "Open in Colab" button opens the page's Colab edition (colab/, tools/colab.py).

sphinx-book-theme builds the launch buttons in its html-page-context handler (priority
501), the Colab one as `<colab_url>/github/<org>/<repo>/blob/<branch>/<page>.ipynb`.
This handler runs after it and puts the edition's folder before the page's path, so
Colab opens the notebook with plain-Markdown exercises, folded solutions and author-year
citations, not the MyST source.

`colab_edition_dir` (Sphinx config) names that folder: `colab` for the book, and
`colab/student` in the student edition's build (`make book-student`, whose _config.yml
tools/book.py writes), whose notebooks hold no solutions.
"""

from __future__ import annotations

COLAB_DIR = "colab"


def _buttons(buttons):
    for button in buttons:
        yield button
        yield from _buttons(button.get("buttons", []))


def point_colab_at_edition(app, pagename, templatename, context, doctree):
    folder = app.config.colab_edition_dir.strip("/")
    source, edition = f"{pagename}.ipynb", f"{folder}/{pagename}.ipynb"
    for button in _buttons(context.get("header_buttons", [])):
        url = button.get("url", "")
        if button.get("text") == "Colab" and url.endswith(f"/{source}"):
            if not url.endswith(f"/{edition}"):
                button["url"] = url.removesuffix(source) + edition


def setup(app):
    app.add_config_value("colab_edition_dir", COLAB_DIR, "html")
    app.connect("html-page-context", point_colab_at_edition, priority=600)
    return {"version": "1.1", "parallel_read_safe": True, "parallel_write_safe": True}
