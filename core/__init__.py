"""dossiersync — several Sage 50FR dossiers, one Sage Sales Management implementation."""

__version__ = "0.1.0"
