"""The Colab edition: every chapter rewritten into plain Markdown that Colab renders.

    python tools/colab.py            # regenerate colab/ from the chapters in _toc.yml
    python tools/colab.py --check    # exit 1, listing stale files, if colab/ is stale

The chapters (chapters/*.ipynb) stay the one source of truth: the HTML book reads their
MyST markup (sphinx-exercise, sphinxcontrib-bibtex), and this script writes two
editions, which the "Open in Colab" buttons open (_ext/colab_edition.py):

- colab/<same path>.ipynb, the book's: solutions folded (below);
- colab/student/<same path>.ipynb, the student edition's: the chapter converted with its
  solutions unfolded (`nbgrader_sources`, also the source of an nbgrader course), then
  passed through nbgrader's ClearSolutions (tools/book.py `student_edition`), so it
  holds no solution: answer cells read `raise NotImplementedError()`, written answers
  "YOUR ANSWER HERE". `make student-bundle` zips these.

Never edit colab/ by hand.

What changes, in Markdown cells only (code cells, outputs and metadata are kept):
- exercises become headings "Exercise N: Title", numbered as the HTML book numbers them
  (one sequence over the whole book, in _toc.yml order); figures and equations likewise;
- solutions are folded: Markdown ones (`:::{solution}`) in <details>, and code that is
  a solution (nbgrader solution cells; the code cells of a gated solution-start ...
  solution-end, the form before `tools/book.py nbgrader-markup`) starts with Colab's
  form line `# @title Solution to Exercise N { display-mode: "form" }`, which shows it
  collapsed (stored outputs stay visible; so does the check cell after an answer);
- {cite} becomes "(He et al., 2016)", and a last cell lists the chapter's references;
- {numref}, {ref}, {eq}, {doc} and other roles become plain text; admonitions become
  blockquotes; `(label)=` targets and `%` comments go; a code cell with a figure caption
  (metadata.mystnb.figure.caption) is followed by a cell "**Figure N.** caption".
"""

from __future__ import annotations

import argparse
import copy
import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import book  # tools/book.py: the exercise markup and the student edition
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "colab"
BIB = ROOT / "references.bib"
COLAB = "https://colab.research.google.com/github"

# -- citations -------------------------------------------------------------------------


class Bibliography:
    """references.bib: author-year labels and entries (pybtex, as in the HTML book)."""

    def __init__(self, path: Path = BIB):
        from pybtex.database import parse_file
        from pybtex.plugin import find_plugin

        # pybtex looks plugins up among all entry points, slowly: once each, here.
        self.style = find_plugin("pybtex.style.formatting", "plain")()
        self.markdown = find_plugin("pybtex.backends", "markdown")()
        self.text = find_plugin("pybtex.backends", "text")()
        self.entries = parse_file(str(path)).entries if path.exists() else {}
        self.labels = self._labels()
        self._references: dict[str, str] = {}

    def _surname(self, person) -> str:
        from pybtex.richtext import Text

        return Text.from_latex(
            " ".join(person.prelast_names + person.last_names)
        ).render(self.text)

    def _authors(self, key: str) -> str:
        entry = self.entries[key]
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [self._surname(p) for p in people]
        if not names:
            return key
        if len(names) == 1:
            return names[0]
        if len(names) == 2:
            return f"{names[0]} and {names[1]}"
        return f"{names[0]} et al."

    def _labels(self) -> dict[str, tuple[str, str]]:
        """key -> (authors, year), with a/b suffixes where two works read the same."""
        labels = {
            key: (self._authors(key), self.entries[key].fields.get("year", "n.d."))
            for key in self.entries
        }
        groups: dict[tuple[str, str], list[str]] = {}
        for key, label in labels.items():
            groups.setdefault(label, []).append(key)
        for (authors, year), keys in groups.items():
            if len(keys) > 1:
                keys.sort(key=lambda k: (self.entries[k].fields.get("title", ""), k))
                for suffix, key in zip("abcdefghijklmnopqrstuvwxyz", keys):
                    labels[key] = (authors, year + suffix)
        return labels

    def cite(self, keys: list[str], mode: str = "p") -> str:
        """Parenthetical "(He et al., 2016; Lin et al., 2017)" or "He et al. (2016)"."""
        known = [k for k in keys if k in self.labels]
        if mode == "t":
            return ", ".join(f"{a} ({y})" for a, y in (self.labels[k] for k in known))
        if mode == "author":
            return ", ".join(self.labels[k][0] for k in known)
        if mode == "year":
            return ", ".join(self.labels[k][1] for k in known)
        inner = "; ".join(f"{a}, {y}" for a, y in (self.labels[k] for k in known))
        return inner if mode == "alp" else f"({inner})"

    def reference(self, key: str) -> str:
        """One entry in Markdown: "**He et al., 2016.** Kaiming He, ... 2016."."""
        if key not in self._references:
            text = self.style.format_entry(key, self.entries[key]).text.render(
                self.markdown
            )
            # pybtex escapes all punctuation; inside a list item these need none.
            text = re.sub(r"\\([.\-()!+#{}:,;'])", r"\1", " ".join(text.split()))
            authors, year = self.labels[key]
            self._references[key] = f"**{authors}, {year}.** {text}"
        return self._references[key]


# -- the book's structure --------------------------------------------------------------


def toc_files(root: Path = ROOT) -> list[str]:
    """Every `file:` of _toc.yml in reading order (root, parts, chapters, sections)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key, []))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    found.append(str(toc["root"]))
    walk({k: v for k, v in toc.items() if k != "root"})
    return [re.sub(r"\.(ipynb|md)$", "", f) for f in found]


def repository(root: Path = ROOT) -> tuple[str, str]:
    """("org/repo", branch) from `repository:` in _config.yml."""
    config = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    repo = config["url"].rstrip("/").removeprefix("https://github.com/")
    return repo, config.get("branch", "main")


def colab_url(docname: str, root: Path = ROOT, student: bool = False) -> str:
    """The Colab address of a chapter's Colab edition (or of its student edition)."""
    repo, branch = repository(root)
    edition = "colab/student" if student else "colab"
    return f"{COLAB}/{repo}/blob/{branch}/{edition}/{docname}.ipynb"


def raw_url(path: str, docname: str, root: Path = ROOT) -> str:
    """A file the book links relatively, as Colab (one file, no folder) can fetch it."""
    if re.match(r"^[A-Za-z][\w+.-]*:|^#", path):
        return path  # a URL, data: or attachment:, or an anchor
    repo, branch = repository(root)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(docname), path))
    if path.startswith("/"):
        target = posixpath.normpath(path)  # Sphinx: relative to the book's root
    return f"https://raw.githubusercontent.com/{repo}/{branch}/{target.lstrip('/')}"


# -- MyST -> Markdown ------------------------------------------------------------------

ADMONITIONS = {
    "note",
    "tip",
    "hint",
    "important",
    "warning",
    "caution",
    "attention",
    "danger",
    "error",
    "seealso",
    "admonition",
    "margin",
    "sidebar",
    "topic",
    "epigraph",
    "pull-quote",
    "highlights",
    "dropdown",
}
TITLES = {"seealso": "See also", "pull-quote": "Quote"}
DROPPED = {"bibliography", "tableofcontents", "toctree", "glossary", "index", "only"}
CODE = {"code", "code-block", "sourcecode", "literalinclude"}

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[A-Za-z][\w:.+-]*)\}\s*(?P<arg>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
TARGET = re.compile(r"^\s*\((?P<label>[^()\s]+)\)=\s*$")
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
EQ_LABEL = re.compile(r"\$\$\s*\((?P<label>[^()\s]+)\)\s*$")
INLINE = re.compile(
    r"(?P<role>\{[A-Za-z][\w:+.-]*\})?(?P<ticks>`+)(?P<body>.+?)(?<!`)(?P=ticks)(?!`)",
    re.S,
)
IMAGE = re.compile(r"(!\[[^\]]*\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
GATE_START = re.compile(r"^ {0,3}(`{3,}|:{3,})\{solution-start\}", re.M)
GATE_END = re.compile(r"^ {0,3}(`{3,}|:{3,})\{solution-end\}", re.M)
FORM = re.compile(r"^#\s*@title\b.*$")


@dataclass
class Target:
    kind: str  # exercise, figure, equation, section
    number: str = ""
    title: str = ""
    docname: str = ""


@dataclass
class Context:
    """State of one conversion of the whole book (run twice: index, then convert)."""

    bib: Bibliography
    targets: dict[str, Target] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)  # docname -> first heading
    counters: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    final: bool = False
    fold: bool = True  # the book's edition folds solutions; nbgrader's source does not
    docname: str = ""
    cited: list[str] = field(default_factory=list)
    heading_level: int = 1
    pending_target: str | None = None
    gate: str | None = None  # the number of the exercise whose gated solution is open
    gate_opened: str | None = None  # ... and of the last one opened
    gate_markdown_cells: int = 0

    def next(self, kind: str) -> str:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return str(self.counters[kind])

    def register(self, label: str | None, target: Target) -> None:
        if label:
            target.docname = self.docname
            self.targets.setdefault(label, target)

    def warn(self, message: str) -> None:
        if self.final:
            self.warnings.append(f"{self.docname}: {message}")

    def number_of(self, label: str) -> str:
        target = self.targets.get(label)
        if target is None:
            self.warn(f"unknown label {label!r}")
            return label
        return target.number


def split_explicit(text: str) -> tuple[str | None, str]:
    """`Title <target>` -> ("Title", "target"); `target` -> (None, "target")."""
    m = EXPLICIT.match(text.strip())
    return (m["text"], m["target"].strip()) if m else (None, text.strip())


NUMREF_NAMES = {"exercise": "Exercise", "figure": "Figure", "equation": "Equation"}


def convert_role(role: str, body: str, ctx: Context) -> str:
    name = role.lower()
    if name.startswith("cite"):
        keys = [k.strip() for k in body.split(",") if k.strip()]
        for key in keys:
            if key not in ctx.bib.labels:
                ctx.warn(f"unknown citation key {key!r}")
            elif key not in ctx.cited:
                ctx.cited.append(key)
        # cite, cite:p, cite:t, cite:ps, cite:ct (capitalised), cite:author, ...
        mode = name.partition(":")[2].lstrip("c") or "p"
        mode = {"ps": "p", "ts": "t"}.get(mode, mode)
        known = ("p", "t", "alp", "author", "year")
        return ctx.bib.cite(keys, mode if mode in known else "p")
    text, target = split_explicit(body)
    if name == "numref":
        found = ctx.targets.get(target)
        if found is None:
            ctx.warn(f"unknown label {target!r}")
            return text or target
        if text:
            return (
                text.replace("%s", found.number)
                .replace("{number}", found.number)
                .replace("{name}", found.title)
            )
        return f"{NUMREF_NAMES.get(found.kind, 'Section')} {found.number}".strip()
    if name == "eq":
        return f"({ctx.number_of(target)})" if text is None else text
    if name in ("ref", "any"):
        if text:
            return text
        found = ctx.targets.get(target)
        if found is None:
            ctx.warn(f"unknown label {target!r}")
            return target
        if found.kind == "exercise":
            return f"Exercise {found.number}" + (
                f" ({found.title})" if found.title else ""
            )
        return found.title or target
    if name == "doc":
        docname = target.removesuffix(".ipynb").removesuffix(".md")
        if not docname.startswith("/"):
            docname = posixpath.join(posixpath.dirname(ctx.docname), docname)
        docname = posixpath.normpath(docname).lstrip("/")
        title = text or ctx.titles.get(docname, docname)
        if (ROOT / f"{docname}.ipynb").exists():
            return f"[{title}]({colab_url(docname, student=not ctx.fold)})"
        return title
    if name == "math":
        return f"${body}$"
    if name in ("sub", "subscript"):
        return f"<sub>{body}</sub>"
    if name in ("sup", "superscript"):
        return f"<sup>{body}</sup>"
    if name == "kbd":
        return f"<kbd>{body}</kbd>"
    if name in ("code", "literal", "file", "samp", "command", "envvar", "program"):
        return f"`{body}`"
    return text if text is not None else body  # abbr, term, download, guilabel, ...


def convert_inline(text: str, ctx: Context) -> str:
    def replace(m):
        if not m["role"]:
            return m.group(0)  # an inline code span: left as it is
        return convert_role(m["role"][1:-1], m["body"], ctx)

    def image(m):
        return m[1] + raw_url(m[2], ctx.docname) + m[3]

    return IMAGE.sub(image, INLINE.sub(replace, text))


def plain(text: str) -> str:
    """Markdown heading text without emphasis or code marks, for {ref}."""
    return re.sub(r"[*_`]", "", text).strip()


def quote(text: str) -> str:
    return "\n".join(
        f"> {line}" if line.strip() else ">" for line in text.strip("\n").split("\n")
    )


def details(summary: str, body: str) -> str:
    # Blank lines around the inner Markdown: Colab, like any CommonMark renderer,
    # renders Markdown inside an HTML block only where blank lines part it from tags.
    return f"<details>\n<summary>{summary}</summary>\n\n{body.strip()}\n\n</details>"


def split_options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    if body and body[0].strip() == "---":  # YAML options block
        end = next((i for i in range(1, len(body)) if body[i].strip() == "---"), None)
        if end is not None:
            loaded = yaml.safe_load("\n".join(body[1:end])) or {}
            return {str(k): str(v) for k, v in loaded.items()}, body[end + 1 :]
    i = 0
    while i < len(body) and (m := OPTION.match(body[i].strip())):
        options[m["key"]] = m["value"].strip()
        i += 1
    return options, body[i:]


def find_close(lines: list[str], start: int, char: str, length: int) -> int:
    """Index of the line closing a fence of `length` `char`s opened before `start`."""
    i = start
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            fence, info = m["fence"], m["info"].strip()
            if fence[0] == char and not info and len(fence) >= length:
                return i
            if info.startswith("{") if fence[0] == ":" else (info or fence[0] != char):
                i = find_close(lines, i + 1, fence[0], len(fence)) + 1  # a nested fence
                continue
        i += 1
    return len(lines)


def convert_directive(name: str, arg: str, body: list[str], ctx: Context) -> str:
    name = name.lower()
    options, content = split_options(body)
    label = options.get("label") or options.get("name")
    text = "\n".join(content).strip("\n")
    if name in ("exercise", "exercise-start"):
        nonumber = "nonumber" in options
        number = "" if nonumber else ctx.next("exercise")
        title = convert_inline(arg.strip(), ctx)
        ctx.register(label, Target("exercise", number, plain(title)))
        heading = f"Exercise {number}".strip() + (f": {title}" if title else "")
        level = min(ctx.heading_level + 1, 6)
        out = f"{'#' * level} {heading}"
        return out + (f"\n\n{convert_markdown(text, ctx)}" if text.strip() else "")
    if name == "exercise-end":
        return ""
    if name == "solution":
        number = ctx.number_of(arg.strip())
        cited = list(ctx.cited)
        body = convert_markdown(text, ctx)
        if not ctx.fold:
            # A written answer: nbgrader replaces it, so its citations would hint from
            # the reference list at what it said; they are left out of the list.
            ctx.cited = cited
            return f"**Solution to Exercise {number}.**\n\n{body}"
        return details(f"Solution to Exercise {number}", body)
    if name == "solution-start":
        ctx.gate = ctx.gate_opened = ctx.number_of(arg.strip())
        ctx.gate_markdown_cells = 0
        return "\x00gate\x00"  # replaced by the cell loop, which sees what follows
    if name == "solution-end":
        ctx.gate = None
        return ""
    if name in ("figure", "image"):
        path = arg.strip()
        caption, _, legend = text.partition("\n\n")
        alt = options.get("alt") or plain(convert_inline(caption, ctx)) or "figure"
        out = f"![{alt}]({raw_url(path, ctx.docname)})"
        if name == "figure" and caption.strip():
            number = ctx.next("figure")
            caption = convert_inline(caption.strip(), ctx)
            ctx.register(label, Target("figure", number, plain(caption)))
            out += f"\n\n**Figure {number}.** {caption}"
            if legend.strip():
                out += f"\n\n{convert_markdown(legend, ctx)}"
        return out
    if name == "math":
        tag = ""
        if label:
            number = ctx.next("equation")
            ctx.register(label, Target("equation", number))
            tag = f" \\tag{{{number}}}"
        return f"$$\n{text.strip()}{tag}\n$$"
    if name in CODE:
        language = arg.strip() or options.get("language", "")
        return f"```{language}\n{text}\n```"
    if name in DROPPED:
        return ""
    if name in ADMONITIONS:
        if name in ("admonition", "dropdown", "topic", "sidebar"):
            title, inner = convert_inline(arg.strip(), ctx), text
        else:
            title = TITLES.get(name, name.capitalize())
            inner = f"{arg}\n{text}" if arg.strip() else text
        inner = convert_markdown(inner, ctx)
        if name == "dropdown" or "dropdown" in options.get("class", "").split():
            return details(f"<b>{title or 'Details'}</b>", inner)
        return quote(f"**{title}**" + (f"\n\n{inner}" if inner.strip() else ""))
    # Any other directive (tab-set, card, div, ...): its content, without the markup.
    ctx.warn(f"directive {{{name}}} shown as its content only")
    head = convert_inline(arg.strip(), ctx)
    inner = convert_markdown(text, ctx)
    return (
        f"**{head}**\n\n{inner}"
        if head and name in ("tab-item", "card", "grid-item-card")
        else inner
    )


def convert_text(lines: list[str], ctx: Context) -> list[str]:
    """Lines outside any fence: targets, comments, headings, equation labels, roles."""
    out, in_math = [], False
    for line in lines:
        if not in_math:
            if m := TARGET.match(line):
                ctx.pending_target = m["label"]
                continue
            if line.startswith("%") or line.strip() == "+++":
                continue
            if m := HEADING.match(line):
                ctx.heading_level = len(m["hashes"])
                title = convert_inline(m["text"], ctx)
                if not ctx.titles.get(ctx.docname):
                    ctx.titles[ctx.docname] = plain(title)
                if ctx.pending_target:
                    ctx.register(
                        ctx.pending_target, Target("section", "", plain(title))
                    )
                    ctx.pending_target = None
        if m := EQ_LABEL.search(line):
            number = ctx.next("equation")
            ctx.register(m["label"], Target("equation", number))
            before = line[: m.start()].rstrip()
            line = (
                f"{before} \\tag{{{number}}} $$"
                if before.strip("$ ")
                else f"{before}\\tag{{{number}}}\n$$"
            )
        if line.strip():
            if ctx.pending_target and not HEADING.match(line):
                ctx.register(
                    ctx.pending_target, Target("section", "", ctx.pending_target)
                )
                ctx.pending_target = None
        if line.count("$$") % 2:
            in_math = not in_math
        out.append(line if in_math else convert_inline(line, ctx))
    return out


def convert_markdown(text: str, ctx: Context) -> str:
    lines = text.split("\n")
    out: list[str] = []
    plain_lines: list[str] = []
    i = 0

    def flush():
        out.extend(convert_text(plain_lines, ctx))
        plain_lines.clear()

    while i < len(lines):
        m = FENCE.match(lines[i])
        directive = DIRECTIVE_INFO.match(m["info"].strip()) if m else None
        if m and (directive or m["fence"][0] != ":"):
            flush()
            char, length = m["fence"][0], len(m["fence"])
            end = find_close(lines, i + 1, char, length)
            body = [
                line[len(m["indent"]) :] if line.startswith(m["indent"]) else line
                for line in lines[i + 1 : end]
            ]
            if directive:
                if ctx.pending_target and not (
                    split_options(body)[0].keys() & {"label", "name"}
                ):
                    body = [f":name: {ctx.pending_target}"] + body
                ctx.pending_target = None
                converted = convert_directive(
                    directive["name"], directive["arg"], body, ctx
                )
                # Blank lines around: a directive's Markdown is a block of its own.
                out.extend(["", *converted.split("\n"), ""] if converted else [])
            else:
                out.extend(lines[i : end + 1])  # a code block: verbatim
            i = end + 1
            continue
        plain_lines.append(lines[i])
        i += 1
    flush()
    result = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", result).strip("\n")


# -- notebooks -------------------------------------------------------------------------


def markdown_cell(source: str, near: str | None, suffix: str, taken: set[str]):
    """A new Markdown cell; its id (if ids are used) derives from a neighbour's."""
    cell = nbformat.v4.new_markdown_cell(source)
    if near is not None:
        base = f"{near[:40]}-{suffix}"
        cell["id"], n = base, 1
        while cell["id"] in taken:
            n += 1
            cell["id"] = f"{base}{n}"
        taken.add(cell["id"])
    else:
        cell.pop("id", None)
    return cell


DISPLAY = ("display_data", "execute_result")
GATE_INTRO = (
    "**Solution to Exercise {number}.** Its code is folded below: double-click the "
    "code cell (or click *Show code*) to read it."
)


def gate_has_code(cells, start: int) -> bool:
    for cell in cells[start + 1 :]:
        if cell.cell_type == "markdown" and GATE_END.search(cell.source):
            return False
        if cell.cell_type == "code":
            return True
    return False


def with_form_title(source: str, title: str) -> str:
    lines = source.split("\n")
    if lines and FORM.match(lines[0]):
        lines = lines[1:]
    return "\n".join([f'# @title {title} {{ display-mode: "form" }}'] + lines)


def convert_notebook(nb, ctx: Context):
    """The Colab edition of one chapter (a new notebook; `nb` is left as it is)."""
    nb = copy.deepcopy(nb)
    ctx.cited, ctx.heading_level, ctx.pending_target, ctx.gate = [], 1, None, None
    taken = {c.get("id") for c in nb.cells}
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            gate_before = ctx.gate
            source = convert_markdown(cell.source, ctx)
            if "\x00gate\x00" in source:
                intro = ""
                if gate_has_code(nb.cells, index):
                    intro = GATE_INTRO.format(number=ctx.gate_opened)
                source = source.replace("\x00gate\x00", intro).strip()
            elif gate_before is not None and source.strip():
                ctx.gate_markdown_cells += 1
                more = " (continued)" if ctx.gate_markdown_cells > 1 else ""
                source = details(f"Solution to Exercise {gate_before}{more}", source)
            if not source.strip() and cell.source.strip():
                continue  # only markup (a solution-end marker, a target)
            cell.source = source
            cells.append(cell)
            continue
        if cell.cell_type == "code":
            answer = book.role(cell) == "answer"
            if answer and ctx.fold:
                grade_id = book.GRADE_ID.match(cell.metadata["nbgrader"]["grade_id"])
                number = ctx.number_of(grade_id["label"] if grade_id else "")
                cell.source = with_form_title(
                    cell.source, f"Solution to Exercise {number}"
                )
            elif ctx.gate is not None:
                cell.source = with_form_title(
                    cell.source, f"Solution to Exercise {ctx.gate}"
                )
            cells.append(cell)
            figure = cell.metadata.get("mystnb", {}).get("figure", {})
            # myst-nb wraps each display output in the figure (no output: no figure) and
            # Sphinx numbers each: count them alike, so numbers match the HTML book.
            shown = [o for o in cell.outputs if o.output_type in DISPLAY]
            if figure.get("caption") and shown and (ctx.fold or not answer):
                number = ctx.next("figure")
                for _ in shown[1:]:
                    ctx.next("figure")
                caption = convert_inline(str(figure["caption"]), ctx)
                ctx.register(
                    figure.get("name"), Target("figure", number, plain(caption))
                )
                cells.append(
                    markdown_cell(
                        f"**Figure {number}.** {caption}",
                        cell.get("id"),
                        "figure",
                        taken,
                    )
                )
            continue
        cells.append(cell)
    if ctx.gate is not None:
        ctx.warn("a solution-start without its solution-end")
        ctx.gate = None
    if ctx.cited:
        keys = sorted(
            ctx.cited,
            key=lambda k: (ctx.bib.labels[k][0].lower(), ctx.bib.labels[k][1]),
        )
        listing = "\n".join(f"- {ctx.bib.reference(k)}" for k in keys)
        ids = "colab" if any("id" in c for c in nb.cells) else None
        cells.append(
            markdown_cell(f"## References\n\n{listing}", ids, "references", taken)
        )
    nb.cells = cells
    return nb


def read_document(root: Path, docname: str):
    """A toc entry as a notebook (a .md page: one Markdown cell), or None if absent."""
    if (root / f"{docname}.ipynb").exists():
        return nbformat.read(root / f"{docname}.ipynb", as_version=4)
    if (root / f"{docname}.md").exists():
        return nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_markdown_cell((root / f"{docname}.md").read_text())]
        )
    return None


def convert_book(
    documents: dict, bib: Bibliography, fold: bool = True
) -> tuple[dict, list[str]]:
    """{docname: notebook} -> {docname: Colab edition}, and warnings (unknown labels).

    Two passes over the whole book: the first collects every label's number (exercises,
    figures, equations: one sequence over the book, as the HTML book numbers them), the
    second converts with all of them known: forward and cross-chapter references work.
    fold=False leaves solutions open (nbgrader's source; the student edition's basis).
    """
    ctx = Context(bib=bib, fold=fold)
    for final in (False, True):
        ctx.counters, ctx.final, ctx.warnings = {}, final, []
        converted = {}
        for docname, nb in documents.items():
            ctx.docname = docname
            converted[docname] = convert_notebook(nb, ctx)
    return converted, ctx.warnings


def _documents(root: Path) -> dict:
    return {
        d: nb for d in toc_files(root) if (nb := read_document(root, d)) is not None
    }


def nbgrader_sources(root: Path = ROOT) -> dict:
    """{docname: notebook} for every chapter: the Colab edition with solutions open and
    the exercises in nbgrader's markup, the source of an nbgrader assignment (plain
    Markdown, so Jupyter shows it as Colab does)."""
    documents = {
        d: book.nbgrader_markup(nb, d) for d, nb in _documents(root).items()
    }
    converted, _ = convert_book(documents, Bibliography(root / "references.bib"), False)
    return {d: nb for d, nb in converted.items() if (root / f"{d}.ipynb").exists()}


def student_notebooks(root: Path = ROOT) -> dict[str, str]:
    """{docname: notebook text} of the student edition (what colab/student/ holds)."""
    return {
        d: nbformat.writes(book.student_edition(nb, d)) + "\n"
        for d, nb in nbgrader_sources(root).items()
    }


def build(root: Path = ROOT) -> tuple[dict[Path, str], list[str]]:
    """{colab path: notebook text} for every notebook in the toc, in both editions
    (colab/ and colab/student/), and the warnings."""
    documents = _documents(root)
    converted, warnings = convert_book(documents, Bibliography(root / "references.bib"))
    outputs = {
        root / "colab" / f"{docname}.ipynb": nbformat.writes(nb) + "\n"
        for docname, nb in converted.items()
        if (root / f"{docname}.ipynb").exists()
    }
    for docname, text in student_notebooks(root).items():
        outputs[root / "colab" / "student" / f"{docname}.ipynb"] = text
    return outputs, warnings


def stale(root: Path = ROOT) -> list[str]:
    """What `write` would change: missing, outdated and orphaned files under colab/."""
    expected, _ = build(root)
    found = []
    for path, text in expected.items():
        if not path.exists():
            found.append(f"missing  {path.relative_to(root)}")
        elif path.read_text() != text:
            found.append(f"outdated {path.relative_to(root)}")
    for path in sorted((root / "colab").rglob("*.ipynb")):
        if path not in expected:
            found.append(f"orphaned {path.relative_to(root)}")
    return found


def write(root: Path = ROOT) -> list[str]:
    expected, warnings = build(root)
    for path, text in expected.items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(root)}")
    for path in sorted((root / "colab").rglob("*.ipynb")):
        if path not in expected:
            path.unlink()
            print(f"removed {path.relative_to(root)} (not in _toc.yml)")
    return warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1, listing stale files, if colab/ is out of date",
    )
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        if found:
            print(
                "The Colab edition is out of date (run `make colab`):\n  "
                + "\n  ".join(found)
            )
            return 1
        print("The Colab edition is up to date.")
        return 0
    for warning in write():
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
