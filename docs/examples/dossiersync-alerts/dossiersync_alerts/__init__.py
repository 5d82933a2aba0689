"""dossiersync hook plugin: one alert when an incident keeps recurring or a dossier keeps
failing, by webhook and/or e-mail.

Declared in this distribution's ``pyproject.toml``::

    [project.entry-points.dossiersync]
    alerts = "dossiersync_alerts:ALERTS"

and configured per implementation in the connector's file, ``[plugins.alerts]``.
"""

from .plugin import ALERTS, Alerts
from .settings import AlertSettings

__all__ = ["ALERTS", "AlertSettings", "Alerts"]
