"""French and English labels of the status page.

The language comes from ``web.language`` (``fr``/``en``), or from the browser's
``Accept-Language`` when it is ``auto``.
"""

from __future__ import annotations

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "title": "Sync status",
        "nav.status": "Status",
        "nav.journal": "Journal",
        "nav.incidents": "Incidents",
        "nav.setup": "Set-up",
        "nav.logout": "Sign out",
        "group": "Dossier group",
        "group.all": "All dossiers",
        "group.show": "Show",
        "implementation": "Implementation: {name}",
        "state.new": "new",
        "state.active": "active",
        "state.inactive": "inactive",
        "state.previously_synced": "previously synced",
        "outcome.succeeded": "succeeded",
        "outcome.partial": "partial",
        "outcome.failed": "failed",
        "outcome.running": "running",
        "outcome.interrupted": "interrupted (its process ended)",
        "direction.sage_to_ssm": "Sage 50FR → Sales Management",
        "direction.ssm_to_sage": "Sales Management → Sage 50FR",
        "label.synced": "synced",
        "label.pending": "pending",
        "label.pending_review": "pending review",
        "label.error": "error",
        "label.deleted": "deleted",
        "count.read": "read",
        "count.created": "created",
        "count.updated": "updated",
        "count.deleted": "deleted",
        "count.unchanged": "unchanged",
        "count.pending": "pending",
        "count.refused": "refused",
        "count.failed": "failed",
        "status.last_runs": "Last runs",
        "status.records": "Records by sync label",
        "status.entity": "Entity",
        "status.direction": "Direction",
        "status.start": "Start",
        "status.end": "End",
        "status.outcome": "Outcome",
        "status.counts": "Counts",
        "status.no_run": "Never synced",
        "status.open_incidents": "Open incidents",
        "status.next_run": "Next scheduled run",
        "status.every": "every {minutes} min",
        "status.overdue": "due",
        "status.due_now": "at the service's next cycle",
        "status.not_scheduled": "not scheduled (inactive)",
        "status.no_schedule_here": (
            "none: no schedule runs in this process (the page alone, dossiersync serve). "
            "Dossiers sync when you press Sync now, or under the service (dossiersync run)."
        ),
        "status.running": "Sync in progress",
        "status.running_since": "running since {at}",
        "status.lease": "being synced by {holder}",
        "status.needs_full_sync": "next sync is a full one",
        "status.no_dossier": "No dossier is attached yet: tick the ones to sync in Set-up.",
        "status.job": "Sync started from this page at {at}",
        "status.job_done": "Sync started from this page at {at}: finished at {end}",
        "status.job_processes": "{n} process(es) finished",
        "status.job_not_synced": "{n} record(s) not synced:",
        "status.job_see_incidents": "see the incidents",
        "status.job_records": "{n} record(s) created, updated or deleted.",
        "status.refresh": "This page refreshes while a sync runs.",
        "health.runs_caption": "Runs per day, last {days} days (UTC)",
        "health.runs_summary": (
            "Runs over the last {days} days: {runs} — {succeeded} succeeded, {partial} "
            "partial, {failed} failed, {interrupted} interrupted; {records} record(s) "
            "synced, {not_synced} not synced."
        ),
        "health.day": (
            "{day}: {runs} run(s) — {succeeded} succeeded, {partial} partial, {failed} "
            "failed, {interrupted} interrupted; {records} record(s) synced, {not_synced} "
            "not synced."
        ),
        "health.running": "{n} running.",
        "health.scale_runs": "full height: {n} run(s)",
        "health.records_caption": "Records synced per run, last {runs} runs",
        "health.records_summary": (
            "Last {runs} runs: {records} record(s) synced, {not_synced} not synced; at "
            "most {max} in one run."
        ),
        "health.run": (
            "Run #{run}, {entity}, {direction}, {at} UTC: {outcome}; {records} record(s) "
            "synced, {not_synced} not synced."
        ),
        "health.scale_records": "full height: {n} record(s)",
        "health.today": "today",
        "health.latest": "latest",
        "health.latency": "Change latency: {seconds} s",
        "health.legend.succeeded": "succeeded",
        "health.legend.partial": "partial",
        "health.legend.interrupted": "interrupted",
        "health.legend.failed": "failed",
        "health.legend.running": "running",
        "health.legend.not_synced": "records not synced (refused or failed)",
        "sync_now": "Sync now",
        "sync.started": "Sync of {dossier} started.",
        "sync.busy": "{dossier} is already being synced.",
        "preview": "Preview",
        "preview.title": "What the next sync of {dossier} would do",
        "preview.back": "Back to the status",
        "preview.nothing_written": (
            "Preview: nothing was written, neither in Sage nor in Sales Management."
        ),
        "preview.nothing": "nothing to do",
        "preview.would_fail": "This step would fail:",
        "preview.side.ssm": "Sales Management",
        "preview.side.sage": "Sage 50FR",
        "journal.title": "Journal",
        "journal.run": "Run",
        "journal.trigger": "Trigger",
        "journal.full": "full",
        "journal.duration": "Duration",
        "journal.holder": "Run by",
        "journal.message": "Message",
        "journal.export": "Export as CSV",
        "journal.empty": "No run yet.",
        "journal.newer": "← Newer",
        "journal.older": "Older →",
        "journal.page": "Page {page}",
        "journal.events": "Per-record events",
        "journal.event_at": "At",
        "journal.record": "Record",
        "journal.action": "Action",
        "journal.detail": "Detail",
        "journal.no_events": "This run changed no record.",
        "journal.back": "Back to the journal",
        "journal.events_shown": "First {n} events shown.",
        "incidents.title": "Incidents",
        "incidents.state": "State",
        "incidents.open": "open",
        "incidents.resolved": "resolved",
        "incidents.all": "all",
        "incidents.entity": "Entity",
        "incidents.kind": "Kind",
        "incidents.any": "any",
        "incidents.filter": "Filter",
        "incidents.record": "Record key",
        "incidents.message": "Message",
        "incidents.field": "Field",
        "incidents.ssm_id": "Sales Management id",
        "incidents.first_seen": "First seen",
        "incidents.last_seen": "Last seen",
        "incidents.occurrences": "Occurrences",
        "incidents.resolved_at": "Resolved at",
        "incidents.none": "No incident.",
        "incidents.back": "Back to the incidents",
        "incidents.retry": "Retry now",
        "incidents.retry_help": (
            "Retry now marks this record for a retry by key on the next pass and starts "
            "a sync of its dossier and entity."
        ),
        "incidents.retried": "Retry started.",
        "incidents.retry_marked": "Record marked for retry; it will be retried by the next sync.",
        "incident": "Incident",
        "kind.invalid_record": "invalid record",
        "kind.refused_by_ssm": "refused by Sales Management",
        "kind.sage_write_failed": "Sage 50FR write failed",
        "kind.run_failed": "run failed",
        "kind.mass_deletion_refused": "mass deletion refused",
        "kind.restored_database": "restored Sage 50FR database",
        "kind.moved_between_dossiers": "moved between dossiers",
        "kind.unknown_reference": "unknown reference",
        "kind.account_changed": "account changed in Sales Management",
        "setup.title": "Set-up: dossiers of the implementation",
        "setup.help": (
            "Tick a dossier to attach it to the implementation and activate it; untick it "
            "to deactivate it. The first sync after activation is a full one, with Sage "
            "50FR as master."
        ),
        "setup.save": "Save",
        "setup.name": "Dossier",
        "setup.origin": "Found in",
        "setup.entities": "Entities",
        "setup.linked": "Linked records",
        "setup.origin.configuration": "configuration",
        "setup.origin.odbc-dsn": "ODBC data source",
        "setup.origin.state-only": "state store only",
        "setup.origin.ssm-only": "Sales Management only",
        "setup.in_ssm": "Records in Sales Management",
        "setup.not_configured": "not in the configuration: add it there to reactivate it",
        "setup.none": "No dossier proposed: add dossiers or ODBC patterns to the configuration.",
        "setup.activated": "Activated: {ids}.",
        "setup.deactivated": "Deactivated: {ids}. Their data stays in Sales Management.",
        "setup.unchanged": "Nothing changed.",
        "confirm.title": "Deactivate these dossiers?",
        "confirm.text": (
            "They will no longer be read or written. Their data stays in Sales Management: "
            "nothing is deleted or archived there. Reactivating one later runs a full sync "
            "with Sage 50FR as master."
        ),
        "confirm.yes": "Deactivate",
        "confirm.no": "Cancel",
        "unauthorized.title": "Access token needed",
        "unauthorized.text": (
            "Open the address printed when the service started (it ends with ?token=…), "
            "or enter the token."
        ),
        "unauthorized.token": "Token",
        "unauthorized.submit": "Open",
        "forbidden.title": "Action refused",
        "forbidden.text": (
            "The form had expired or did not come from this page. Reload and try again."
        ),
        "notfound.title": "Not found",
        "notfound.text": "There is nothing at this address.",
        "error.inactive": "{dossier} is inactive: activate it first.",
        "utc": "UTC",
        "none": "—",
        "yes": "yes",
        "no": "no",
    },
    "fr": {
        "title": "État de synchronisation",
        "nav.status": "État",
        "nav.journal": "Journal",
        "nav.incidents": "Incidents",
        "nav.setup": "Configuration",
        "nav.logout": "Se déconnecter",
        "group": "Groupe de dossiers",
        "group.all": "Tous les dossiers",
        "group.show": "Afficher",
        "implementation": "Implémentation : {name}",
        "state.new": "nouveau",
        "state.active": "actif",
        "state.inactive": "inactif",
        "state.previously_synced": "déjà synchronisé",
        "outcome.succeeded": "réussi",
        "outcome.partial": "partiel",
        "outcome.failed": "échec",
        "outcome.running": "en cours",
        "outcome.interrupted": "interrompu (son processus s’est arrêté)",
        "direction.sage_to_ssm": "Sage 50FR → Sales Management",
        "direction.ssm_to_sage": "Sales Management → Sage 50FR",
        "label.synced": "synchronisé",
        "label.pending": "en attente",
        "label.pending_review": "à vérifier",
        "label.error": "erreur",
        "label.deleted": "supprimé",
        "count.read": "lus",
        "count.created": "créés",
        "count.updated": "modifiés",
        "count.deleted": "supprimés",
        "count.unchanged": "inchangés",
        "count.pending": "en attente",
        "count.refused": "refusés",
        "count.failed": "en échec",
        "status.last_runs": "Dernières synchronisations",
        "status.records": "Enregistrements par statut de synchronisation",
        "status.entity": "Entité",
        "status.direction": "Sens",
        "status.start": "Début",
        "status.end": "Fin",
        "status.outcome": "Résultat",
        "status.counts": "Compteurs",
        "status.no_run": "Jamais synchronisé",
        "status.open_incidents": "Incidents ouverts",
        "status.next_run": "Prochaine synchronisation prévue",
        "status.every": "toutes les {minutes} min",
        "status.overdue": "en retard",
        "status.due_now": "au prochain cycle du service",
        "status.not_scheduled": "non planifiée (inactif)",
        "status.no_schedule_here": (
            "aucune : aucune planification ne tourne dans ce processus (la page seule, "
            "dossiersync serve). Les dossiers se synchronisent quand vous cliquez sur "
            "« Synchroniser maintenant », ou sous le service (dossiersync run)."
        ),
        "status.running": "Synchronisation en cours",
        "status.running_since": "en cours depuis {at}",
        "status.lease": "synchronisé par {holder}",
        "status.needs_full_sync": "la prochaine synchronisation sera complète",
        "status.no_dossier": (
            "Aucun dossier n’est encore associé : cochez ceux à synchroniser dans Configuration."
        ),
        "status.job": "Synchronisation lancée depuis cette page à {at}",
        "status.job_done": "Synchronisation lancée depuis cette page à {at} : terminée à {end}",
        "status.job_processes": "{n} processus terminé(s)",
        "status.job_not_synced": "{n} enregistrement(s) non synchronisé(s) :",
        "status.job_see_incidents": "voir les incidents",
        "status.job_records": "{n} enregistrement(s) créé(s), modifié(s) ou supprimé(s).",
        "status.refresh": "Cette page se met à jour pendant la synchronisation.",
        "health.runs_caption": "Synchronisations par jour, {days} derniers jours (UTC)",
        "health.runs_summary": (
            "Synchronisations des {days} derniers jours : {runs} — {succeeded} réussie(s), "
            "{partial} partielle(s), {failed} en échec, {interrupted} interrompue(s) ; "
            "{records} enregistrement(s) synchronisé(s), {not_synced} non synchronisé(s)."
        ),
        "health.day": (
            "{day} : {runs} synchronisation(s) — {succeeded} réussie(s), {partial} "
            "partielle(s), {failed} en échec, {interrupted} interrompue(s) ; {records} "
            "enregistrement(s) synchronisé(s), {not_synced} non synchronisé(s)."
        ),
        "health.running": "{n} en cours.",
        "health.scale_runs": "pleine hauteur : {n} synchronisation(s)",
        "health.records_caption": (
            "Enregistrements synchronisés par processus, {runs} derniers processus"
        ),
        "health.records_summary": (
            "{runs} derniers processus : {records} enregistrement(s) synchronisé(s), "
            "{not_synced} non synchronisé(s) ; au plus {max} en un processus."
        ),
        "health.run": (
            "Processus n° {run}, {entity}, {direction}, {at} UTC : {outcome} ; {records} "
            "enregistrement(s) synchronisé(s), {not_synced} non synchronisé(s)."
        ),
        "health.scale_records": "pleine hauteur : {n} enregistrement(s)",
        "health.today": "aujourd’hui",
        "health.latest": "dernier",
        "health.latency": "Délai de propagation d’une modification : {seconds} s",
        "health.legend.succeeded": "réussie",
        "health.legend.partial": "partielle",
        "health.legend.interrupted": "interrompue",
        "health.legend.failed": "en échec",
        "health.legend.running": "en cours",
        "health.legend.not_synced": "enregistrements non synchronisés (refusés ou en échec)",
        "sync_now": "Synchroniser maintenant",
        "sync.started": "Synchronisation de {dossier} lancée.",
        "sync.busy": "{dossier} est déjà en cours de synchronisation.",
        "preview": "Aperçu",
        "preview.title": "Ce que ferait la prochaine synchronisation de {dossier}",
        "preview.back": "Retour à l'état",
        "preview.nothing_written": (
            "Aperçu : rien n'a été écrit, ni dans Sage ni dans Sales Management."
        ),
        "preview.nothing": "rien à faire",
        "preview.would_fail": "Cette étape échouerait :",
        "preview.side.ssm": "Sales Management",
        "preview.side.sage": "Sage 50FR",
        "journal.title": "Journal",
        "journal.run": "Processus",
        "journal.trigger": "Déclencheur",
        "journal.full": "complète",
        "journal.duration": "Durée",
        "journal.holder": "Exécuté par",
        "journal.message": "Message",
        "journal.export": "Exporter en CSV",
        "journal.empty": "Aucune synchronisation pour l’instant.",
        "journal.newer": "← Plus récents",
        "journal.older": "Plus anciens →",
        "journal.page": "Page {page}",
        "journal.events": "Événements par enregistrement",
        "journal.event_at": "Heure",
        "journal.record": "Enregistrement",
        "journal.action": "Action",
        "journal.detail": "Détail",
        "journal.no_events": "Ce processus n’a modifié aucun enregistrement.",
        "journal.back": "Retour au journal",
        "journal.events_shown": "Les {n} premiers événements sont affichés.",
        "incidents.title": "Incidents",
        "incidents.state": "État",
        "incidents.open": "ouvert",
        "incidents.resolved": "résolu",
        "incidents.all": "tous",
        "incidents.entity": "Entité",
        "incidents.kind": "Type",
        "incidents.any": "tous",
        "incidents.filter": "Filtrer",
        "incidents.record": "Clé de l’enregistrement",
        "incidents.message": "Message",
        "incidents.field": "Champ",
        "incidents.ssm_id": "Id Sales Management",
        "incidents.first_seen": "Première occurrence",
        "incidents.last_seen": "Dernière occurrence",
        "incidents.occurrences": "Occurrences",
        "incidents.resolved_at": "Résolu le",
        "incidents.none": "Aucun incident.",
        "incidents.back": "Retour aux incidents",
        "incidents.retry": "Réessayer maintenant",
        "incidents.retry_help": (
            "« Réessayer maintenant » marque cet enregistrement pour qu’il soit repris par "
            "sa clé au prochain passage et lance une synchronisation de son dossier et de "
            "son entité."
        ),
        "incidents.retried": "Nouvel essai lancé.",
        "incidents.retry_marked": (
            "Enregistrement marqué : il sera repris par la prochaine synchronisation."
        ),
        "incident": "Incident",
        "kind.invalid_record": "enregistrement invalide",
        "kind.refused_by_ssm": "refusé par Sales Management",
        "kind.sage_write_failed": "échec d’écriture dans Sage 50FR",
        "kind.run_failed": "processus en échec",
        "kind.mass_deletion_refused": "suppression massive refusée",
        "kind.restored_database": "base Sage 50FR restaurée",
        "kind.moved_between_dossiers": "changement de dossier",
        "kind.unknown_reference": "référence inconnue",
        "kind.account_changed": "compte changé dans Sales Management",
        "setup.title": "Configuration : dossiers de l’implémentation",
        "setup.help": (
            "Cochez un dossier pour l’associer à l’implémentation et l’activer ; décochez-le "
            "pour le désactiver. La première synchronisation après activation est complète, "
            "avec Sage 50FR comme source principale."
        ),
        "setup.save": "Enregistrer",
        "setup.name": "Dossier",
        "setup.origin": "Trouvé dans",
        "setup.entities": "Entités",
        "setup.linked": "Enregistrements liés",
        "setup.origin.configuration": "configuration",
        "setup.origin.odbc-dsn": "source de données ODBC",
        "setup.origin.state-only": "état du connecteur seulement",
        "setup.origin.ssm-only": "Sales Management seulement",
        "setup.in_ssm": "Enregistrements dans Sales Management",
        "setup.not_configured": (
            "absent de la configuration : ajoutez-le pour pouvoir le réactiver"
        ),
        "setup.none": (
            "Aucun dossier proposé : ajoutez des dossiers ou des motifs ODBC à la configuration."
        ),
        "setup.activated": "Activé(s) : {ids}.",
        "setup.deactivated": ("Désactivé(s) : {ids}. Leurs données restent dans Sales Management."),
        "setup.unchanged": "Aucun changement.",
        "confirm.title": "Désactiver ces dossiers ?",
        "confirm.text": (
            "Ils ne seront plus ni lus ni écrits. Leurs données restent visibles dans Sales "
            "Management : rien n’y est supprimé ni archivé. Une réactivation lancera une "
            "synchronisation complète avec Sage 50FR comme source principale."
        ),
        "confirm.yes": "Désactiver",
        "confirm.no": "Annuler",
        "unauthorized.title": "Jeton d’accès nécessaire",
        "unauthorized.text": (
            "Ouvrez l’adresse affichée au démarrage du service (elle se termine par "
            "?token=…), ou saisissez le jeton."
        ),
        "unauthorized.token": "Jeton",
        "unauthorized.submit": "Ouvrir",
        "forbidden.title": "Action refusée",
        "forbidden.text": (
            "Le formulaire avait expiré ou ne venait pas de cette page. Rechargez et réessayez."
        ),
        "notfound.title": "Introuvable",
        "notfound.text": "Il n’y a rien à cette adresse.",
        "error.inactive": "{dossier} est inactif : activez-le d’abord.",
        "utc": "UTC",
        "none": "—",
        "yes": "oui",
        "no": "non",
    },
}


def choose_language(configured: str, accept_language: str | None) -> str:
    """``fr`` or ``en``: the configured one, else the browser's first supported choice."""
    if configured in LANGUAGES:
        return configured
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # earlier entries win ties, as browsers list them by preference
        q -= position * 1e-6
        if q > best_q:
            best, best_q = primary, q
    return best


class Translator:
    """``t("key", name=value)``: the label in one language, English when it has none."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._messages = MESSAGES[self.language]

    def __call__(self, key: str, **values: object) -> str:
        text = self._messages.get(key) or MESSAGES[DEFAULT_LANGUAGE].get(key) or key
        return text.format(**values) if values else text

    def term(self, prefix: str, value: str | None) -> str:
        """A translated enumerated value (state, outcome, label…), or the value itself."""
        if value is None:
            return self("none")
        key = f"{prefix}.{value}"
        text = self._messages.get(key) or MESSAGES[DEFAULT_LANGUAGE].get(key)
        return text or value
