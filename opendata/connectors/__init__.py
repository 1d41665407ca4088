"""Open-data connectors, one module per source, all following :mod:`opendata.connectors.base`.

Importing this package registers every connector (``refresh_source NAME`` and the schedules read the
registry). Add a new module's import below.
"""

from opendata.connectors import (  # noqa: F401  (importing a module registers its connectors)
    best,
    cadgis,
    grb,
    heights,
    municipalities,
    osm,
    statbel,
    stations,
)
from opendata.connectors.base import CONNECTORS, Connector, connectors, register  # noqa: F401
