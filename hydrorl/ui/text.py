"""Text from users, files and the database, shown as text: never as markup.

Names, descriptions, file names, cells quoted in errors and tracebacks reach the
page through the panes below only.  Markdown panes (alerts included) hand raw
HTML through to the browser and give meaning to brackets, stars and ``$$``, so a
price cell ``<img src=x onerror=...>`` or a name ``[x](javascript:...)`` would
become a live element; these helpers make every character of such text show as
itself.  Widgets that render their labels as HTML (Bokeh's ``MultiChoice``, an
SVG) take :func:`html_text`; the other widgets render labels as plain text and
take the raw string, which an escape would only garble.
"""

from __future__ import annotations

import html
import re
import string
from typing import Literal

import panel as pn

# Every ASCII punctuation mark may be backslash-escaped in CommonMark; '&' and ';' are left
# for the HTML entities that html.escape writes.
_MARKDOWN_PUNCTUATION = re.compile(
    "([" + re.escape("".join(c for c in string.punctuation if c not in "&;")) + "])"
)
_LEADING_SPACE = re.compile(r"^[ \t]+", re.MULTILINE)

AlertType = Literal["primary", "secondary", "success", "danger", "warning", "info", "light", "dark"]


def html_text(text: object) -> str:
    """``text`` for an HTML context: ``<``, ``>``, ``&`` and quotes as entities."""
    return html.escape(str(text), quote=True)


def markdown_text(text: object) -> str:
    """``text`` as Markdown source that renders exactly as the text, line breaks kept.

    HTML is escaped first (no tag survives), then every Markdown-significant mark
    is backslash-escaped (no link, emphasis, heading, list or code span forms).
    Leading spaces become non-breaking ones so that an indented traceback line
    is not read as a code block, and each line ends in a hard break.
    """
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(str(text), quote=False))
    escaped = _LEADING_SPACE.sub(lambda m: "&nbsp;" * len(m.group().expandtabs(4)), escaped)
    return "\\\n".join(escaped.splitlines())


def markdown_pane(source: str, **params: object) -> pn.pane.Markdown:
    """A Markdown pane of ``source``, in which every piece of data came through markdown_text.

    Math rendering is off: ``$$`` in a name must not start a formula.
    """
    return pn.pane.Markdown(source, disable_math=True, **params)


def alert(text: object, alert_type: AlertType = "danger", **params: object) -> pn.pane.Alert:
    """A styled alert (red for ``danger``, green for ``success``) showing ``text`` verbatim."""
    return pn.pane.Alert(markdown_text(text), alert_type=alert_type, disable_math=True, **params)
