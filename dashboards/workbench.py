"""The HydroRL workbench for ``panel serve``: systems, upload, training with live curves, episodes.

hydrorl dashboard                              # the default database, opens this app
panel serve dashboards/workbench.py            # the same, by hand
"""

import panel as pn

import hydrorl
from hydrorl.ui import WorkbenchApp, extension

extension(notifications=False)  # served by panel serve itself: no CDN

pn.template.BootstrapTemplate(title="HydroRL", main=[WorkbenchApp(hydrorl.connect())]).servable()
