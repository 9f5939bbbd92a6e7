"""Author-year citations in round brackets: (He et al., 2016), and He et al. (2016).

sphinxcontrib-bibtex's `author_year` style puts them in square brackets; this registers
the same style with round ones as `author_year_round` (_config.yml:
bibtex_reference_style). `{cite}` and `{cite:p}` give the parenthetical form, `{cite:t}`
the textual one.
"""

import dataclasses

from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.author_year import (
    AuthorYearReferenceStyle,
)


def _round() -> BracketStyle:
    return BracketStyle(left="(", right=")")


def _field():
    return dataclasses.field(default_factory=_round)


@dataclasses.dataclass
class RoundAuthorYearReferenceStyle(AuthorYearReferenceStyle):
    bracket_parenthetical: BracketStyle = _field()
    bracket_textual: BracketStyle = _field()
    bracket_author: BracketStyle = _field()
    bracket_label: BracketStyle = _field()
    bracket_year: BracketStyle = _field()


def setup(app):
    register_plugin(
        "sphinxcontrib.bibtex.style.referencing",
        "author_year_round",
        RoundAuthorYearReferenceStyle,
    )
    return {"parallel_read_safe": True, "parallel_write_safe": True}
