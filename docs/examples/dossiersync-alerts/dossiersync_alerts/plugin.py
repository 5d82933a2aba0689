"""The hooks: when a count reaches its threshold, one alert."""

from __future__ import annotations

import logging
import threading

from dossiersync.plugin import Config, IncidentRecord, RunRecord, Secret, hookimpl, scrub

from .alert import Alert, failed_runs_alert, incident_alert
from .delivery import deliver
from .settings import AlertSettings, read

log = logging.getLogger("dossiersync.alerts")


class Alerts:
    """Alerts once per episode, restart-proof, from the counts the core keeps.

    An incident's episode is the incident (resolved and seen again, it is a new one):
    it alerts when its ``occurrences`` reach ``after_occurrences``, a number the core
    reaches once per incident. A failing run's episode is its streak: it alerts when
    ``failed_in_a_row`` reaches ``after_failed_runs``, once per streak (a run that gets
    through ends it). Failed runs are counted there only, not as ``run_failed``
    incidents too, so one failure never alerts twice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings: AlertSettings | None = None
        self._implementation = ""
        self._secrets: list[Secret] = []

    @hookimpl
    def dossiersync_configure(self, config: Config) -> None:
        table = config.plugins.get("alerts")
        settings = read(table, f"{config.path}: [plugins.alerts]") if table is not None else None
        with self._lock:  # a refused table raised above: the previous settings stay
            self._settings = settings
            self._implementation = config.implementation.name
            self._secrets = [*config.secrets(), *(settings.secrets() if settings else [])]

    @hookimpl
    def dossiersync_incident_occurred(self, incident: IncidentRecord) -> None:
        settings = self._settings
        if settings is None or not settings.after_occurrences:
            return
        if incident.kind == "run_failed" and settings.after_failed_runs:
            return  # counted as failed runs in a row
        if incident.occurrences == settings.after_occurrences:
            self.send(settings, incident_alert(self._implementation, incident))

    @hookimpl
    def dossiersync_run_finished(self, run: RunRecord) -> None:
        settings = self._settings
        if settings is None or not settings.after_failed_runs:
            return
        if run.failed_in_a_row == settings.after_failed_runs:
            self.send(settings, failed_runs_alert(self._implementation, run))

    def send(self, settings: AlertSettings, alert: Alert) -> None:
        alert = alert.scrubbed(self._secrets)
        failures = deliver(settings, alert)
        for failure in failures:
            log.warning("alert not sent (%s): %s", alert.subject, scrub(failure, self._secrets))
        if not failures:
            log.info("alert sent: %s", alert.subject)


#: the object the entry point names: one per process
ALERTS = Alerts()
