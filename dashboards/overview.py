"""The HydroRL overview dashboard for ``panel serve``: systems and forecasts of a database.

panel serve dashboards/overview.py          # the default database (~/.hydrorl/hydrorl.db)
HYDRORL_DATABASE_URL=sqlite:///x.db panel serve dashboards/overview.py
"""

import panel as pn

import hydrorl
from hydrorl.ui import ForecastExplorer, extension

extension()  # served by panel serve itself: no CDN

pn.template.FastListTemplate(
    title="HydroRL",
    main=[ForecastExplorer(hydrorl.connect())],
).servable()
