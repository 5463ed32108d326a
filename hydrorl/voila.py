"""The ``hydrorl`` Voila template: Voila's ``lab`` template without its CDN links.

Voila's templates link Font Awesome from ``cdn.jsdelivr.net``, which fails offline (the
dashboards use no Font Awesome icon).  The dashboards name this template in their
metadata (``"voila": {"template": "hydrorl"}``), and Voila finds templates only in the
Jupyter data folders (``<prefix>/share/jupyter/voila/templates``), where an editable
install copies no data files.  So the commands a newcomer runs first (``hydrorl demo``,
``hydrorl dashboard``, Binder's ``postBuild``) and ``hydrorl.ui.extension()`` in a
kernel install it there.  Standard library only: the CLI imports this without Panel.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["TEMPLATE", "install_voila_template"]

TEMPLATE = Path(__file__).with_name("voila_template")


def install_voila_template() -> Path | None:
    """Install the ``hydrorl`` Voila template beside Voila's own; return its folder.

    Into the environment's ``share/jupyter`` or, where that cannot be written, the user's
    Jupyter data folder; nothing is written where the files are already these.  None
    when neither can be written (Voila then names the template it misses).
    """
    from jupyter_core.paths import jupyter_data_dir

    for root in (Path(sys.prefix, "share", "jupyter"), Path(jupyter_data_dir())):
        target = root / "voila" / "templates" / "hydrorl"
        try:
            for source in sorted(TEMPLATE.glob("*.j*")):
                destination = target / source.name
                if not destination.is_file() or destination.read_bytes() != source.read_bytes():
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, destination)
        except OSError:
            continue
        return target
    return None
