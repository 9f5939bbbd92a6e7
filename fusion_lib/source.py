"""Render the library's real source inside a notebook: one source of truth for the
book.
"""

from __future__ import annotations

import inspect
import textwrap


def source_markdown(obj) -> str:
    """The source of a class or function as a Markdown code block headed by its import
    path.
    """
    try:
        src = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError) as err:
        raise ValueError(
            f"show_source needs a class or function defined in a .py file; got {obj!r}."
        ) from err
    fence = "````" if "```" in src else "```"
    path = f"{obj.__module__}.{obj.__qualname__}"
    return f"`{path}`\n\n{fence}python\n{src.rstrip()}\n{fence}\n"


def show_source(obj):
    """Display `obj`'s source highlighted, in Jupyter, Colab and the built book alike.

    The output is a `text/markdown` display, which JupyterLab, Colab and myst-nb all
    render as a highlighted code block.
    """
    from IPython.display import Markdown, display

    display(Markdown(source_markdown(obj)))
