"""dossiersync entity plugin: Sage 50FR invoices and credit notes, read-only in SSM.

Declared in this distribution's ``pyproject.toml``::

    [project.entry-points."dossiersync.entities"]
    invoices = "dossiersync_invoices:InvoicesEntity"
"""

from .invoices import CreditNotesEntity, InvoicesEntity

__all__ = ["CreditNotesEntity", "InvoicesEntity"]
