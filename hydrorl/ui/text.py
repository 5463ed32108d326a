"""Text from users, files and the database, shown as text: never as markup.

Names, descriptions, file names, cells quoted in errors, reasons and tracebacks
reach the page through these helpers only.  Panel's Markdown panes (alerts
included) hand raw HTML to the browser, which also runs its scripts; Markdown
gives brackets, stars and backticks a meaning; and the page's MathJax turns
``$$...$$`` and ``\\(...\\)`` into formulas (``\\href`` among them), whatever a
Markdown pane's ``disable_math`` says.  So a price cell ``<img src=x onerror=...>``
or a name ``[x](javascript:...)`` would become a live element.

:func:`html_text` escapes all of that for an HTML context: an SVG, the labels of
Bokeh's ``MultiChoice`` (which it renders as HTML), the pieces of a pane.
:func:`text_pane` and :func:`alert` show such HTML as one raw HTML block, inside
which Markdown changes nothing.  Other widgets (``Select``, sliders, inputs) render
their labels as plain text and take the raw string, which an escape would garble.
"""

from __future__ import annotations

import html
import re
from typing import Literal

import panel as pn

_LEADING_SPACE = re.compile(r"^[ \t]+", re.MULTILINE)

AlertType = Literal["primary", "secondary", "success", "danger", "warning", "info", "light", "dark"]


def html_text(text: object) -> str:
    """``text`` for an HTML context, shown exactly as it is.

    ``<``, ``>``, ``&`` and quotes become entities, and so do ``$`` and ``\\``,
    so that MathJax finds no formula in it.
    """
    escaped = html.escape(str(text), quote=True)
    return escaped.replace("$", "&#36;").replace("\\", "&#92;")


def text_block(html_source: str) -> str:
    """Markdown source that shows ``html_source`` (made with :func:`html_text`) verbatim.

    It is one CommonMark HTML block (a ``<div>`` on a single line), whose inside
    Markdown leaves alone.  Line breaks become ``<br>`` and leading spaces
    non-breaking ones, so a traceback keeps its lines and indentation.
    """
    indented = _LEADING_SPACE.sub(lambda m: "&nbsp;" * len(m.group().expandtabs(4)), html_source)
    return '<div class="hydrorl-text">' + "<br>".join(indented.splitlines()) + "</div>"


def text_pane(html_source: str, **params: object) -> pn.pane.Markdown:
    """A pane showing ``html_source`` (pieces made with :func:`html_text`, tags of ours)."""
    return pn.pane.Markdown(text_block(html_source), **params)


def alert(text: object, alert_type: AlertType = "danger", **params: object) -> pn.pane.Alert:
    """A styled alert (red for ``danger``, green for ``success``) showing ``text`` verbatim."""
    return pn.pane.Alert(text_block(html_text(text)), alert_type=alert_type, **params)
