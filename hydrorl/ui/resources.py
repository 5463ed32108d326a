"""Where the page gets Panel's and Bokeh's JavaScript and stylesheets: from this machine.

Every face must work offline, so nothing may come from a CDN:

- ``panel serve`` (and ``hydrorl dashboard``): the Bokeh server serves Panel's and
  Bokeh's files itself (``/static/...``); :func:`extension` changes nothing there.
- A Jupyter kernel (JupyterLab, and Voila, which runs the notebook in one): Panel talks
  through ipywidgets (``jupyter_bokeh``), the one channel Voila renders, and its
  JavaScript goes into the notebook inline.  Panel still links its components'
  stylesheets from ``cdn.holoviz.org`` there (holoviz/panel#7073, #5167: it inlines
  them only for its own notebook comms, and only for the models of a first render), so
  without a network alerts, buttons and tabs lose their style and every refresh asks the
  CDN again.  :func:`extension` makes every stylesheet link to a file of Panel's
  ``panel/dist`` a ``data:`` URL of that file, when the link is created: whichever
  component creates it, at the first render or at a later update.

Voila's own template links Font Awesome from a CDN as well: see :mod:`hydrorl.voila`.
"""

from __future__ import annotations

import base64
import functools
from pathlib import Path
from typing import Any

import panel as pn
from bokeh.models import ImportedStyleSheet
from panel.io.resources import CDN_DIST, DIST_DIR, LOCAL_DIST

from hydrorl.voila import install_voila_template

__all__ = ["extension", "in_notebook", "local_stylesheet"]


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (JupyterLab, the classic notebook, Voila)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


#: Panel extensions every face of the workbench loads: the runs table is a Tabulator.
WORKBENCH_EXTENSIONS = ("tabulator",)


def extension(*extensions: str, holoviews: bool = False, **params: Any) -> None:
    """``pn.extension`` with every resource served from this machine, in whichever face runs it.

    ``extensions`` (beside :data:`WORKBENCH_EXTENSIONS`) and ``params`` go to
    ``pn.extension`` (``notifications=False``, say).
    ``holoviews=True`` also loads HoloViews' notebook extension (Bokeh backend), inline,
    for notebooks that show HoloViews objects themselves: its own default is the CDN.
    """
    extensions = tuple(dict.fromkeys((*WORKBENCH_EXTENSIONS, *extensions)))
    if not in_notebook():
        pn.extension(*extensions, **params)
        return
    if holoviews:
        import holoviews as hv

        hv.extension("bokeh", inline=True, logo=False)
    pn.extension(*extensions, comms="ipywidgets", inline=True, **params)
    _link_stylesheets_locally()
    install_voila_template()


def local_stylesheet(url: str) -> str:
    """``url`` as a ``data:`` URL of the file in Panel's ``dist`` folder it names, if any.

    Panel's links point at ``cdn.holoviz.org/panel/<version>/dist/...`` (or, relative to a
    Panel server, ``static/extensions/panel/...``), with a ``?v=`` query at times.
    """
    for prefix in (CDN_DIST, LOCAL_DIST):
        if url.startswith(prefix):
            path = DIST_DIR / url[len(prefix) :].split("?")[0]
            if path.is_file():
                return _data_url(path)
    return url


@functools.cache
def _data_url(path: Path) -> str:
    return "data:text/css;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


@functools.cache  # once per process: wrapping twice would rewrite twice
def _link_stylesheets_locally() -> None:
    """Rewrite the URL of every ``ImportedStyleSheet`` created from now on in this kernel.

    At creation, not afterwards: a model is sent to the browser with its first values,
    and Panel creates these links in a dozen places (components, designs, tables).
    """
    original = ImportedStyleSheet.__init__

    def __init__(self: ImportedStyleSheet, *args: Any, **kwargs: Any) -> None:
        if isinstance(kwargs.get("url"), str):
            kwargs["url"] = local_stylesheet(kwargs["url"])
        original(self, *args, **kwargs)

    ImportedStyleSheet.__init__ = __init__  # type: ignore[method-assign]
