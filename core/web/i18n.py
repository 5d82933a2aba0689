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
        "status.running": "Sync in progress",
        "status.running_since": "running since {at}",
        "status.lease": "being synced by {holder}",
        "status.needs_full_sync": "next sync is a full one",
        "status.no_dossier": "No dossier is attached yet: tick the ones to sync in Set-up.",
        "status.job": "Sync started from this page at {at}",
        "status.job_done": "Sync started from this page at {at}: finished at {end}",
        "status.job_processes": "{n} process(es) finished",
        "status.refresh": "This page refreshes while a sync runs.",
        "sync_now": "Sync now",
        "sync.started": "Sync of {dossier} started.",
        "sync.busy": "{dossier} is already being synced.",
        "journal.title": "Journal",
        "journal.run": "Run",
        "journal.trigger": "Trigger",
        "journal.full": "full",
        "journal.duration": "Duration",
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
        "status.refresh": "Cette page se met à jour pendant la synchronisation.",
        "sync_now": "Synchroniser maintenant",
        "sync.started": "Synchronisation de {dossier} lancée.",
        "sync.busy": "{dossier} est déjà en cours de synchronisation.",
        "journal.title": "Journal",
        "journal.run": "Processus",
        "journal.trigger": "Déclencheur",
        "journal.full": "complète",
        "journal.duration": "Durée",
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
