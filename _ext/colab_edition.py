"""The "Open in Colab" button opens the page's Colab edition (colab/, tools/colab.py).

sphinx-book-theme builds the launch buttons in its html-page-context handler (priority
501), the Colab one as `<colab_url>/github/<org>/<repo>/blob/<branch>/<page>.ipynb`.
This handler runs after it and puts `colab/` before the page's path, so Colab opens the
notebook with plain-Markdown exercises, folded solutions and author-year citations, not
the MyST source.
"""

from __future__ import annotations

COLAB_DIR = "colab"


def _buttons(buttons):
    for button in buttons:
        yield button
        yield from _buttons(button.get("buttons", []))


def point_colab_at_edition(app, pagename, templatename, context, doctree):
    source, edition = f"{pagename}.ipynb", f"{COLAB_DIR}/{pagename}.ipynb"
    for button in _buttons(context.get("header_buttons", [])):
        url = button.get("url", "")
        if button.get("text") == "Colab" and url.endswith(f"/{source}"):
            if not url.endswith(f"/{edition}"):
                button["url"] = url.removesuffix(source) + edition


def setup(app):
    app.connect("html-page-context", point_colab_at_edition, priority=600)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
