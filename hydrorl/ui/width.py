"""How wide the page lays a component out, told to Python: :class:`WidthProbe`.

A layout that depends on the room it gets (the episode panels: three side by side on a
wide page, two in a narrow notebook column) cannot be decided on the server, which never
sees the page, nor in CSS alone where the layout is a Bokeh grid.  The probe is an empty,
zero-height strip across its parent; the browser reports its width as the page is laid
out and whenever it changes (a window resized, JupyterLab's side bar opened), in every
face: a Panel server, Voila and JupyterLab alike (ipywidgets carry it there).
"""

from __future__ import annotations

import param
from panel.reactive import ReactiveHTML

__all__ = ["WidthProbe"]


class WidthProbe(ReactiveHTML):
    """An invisible strip across its parent; :attr:`px` is its width in the page."""

    px = param.Integer(default=0, bounds=(0, None), doc="Width in CSS pixels (0: not drawn yet)")

    _template = '<div id="strip" style="width: 100%; height: 0px;"></div>'
    _scripts = {  # noqa: RUF012  (Panel reads these class attributes)
        "render": """
            const look = () => {
                const px = Math.round(strip.getBoundingClientRect().width)
                if (px > 0 && px !== data.px) data.px = px
            }
            state.observer = new ResizeObserver(look)
            state.observer.observe(strip)
        """,
        "remove": "if (state.observer) state.observer.disconnect()",
    }

    def __init__(self, **params: object) -> None:
        params = {"height": 0, "margin": 0, "sizing_mode": "stretch_width", **params}
        super().__init__(**params)
