"""JSON Schemas and mapping files shipped with dossiersync (data only)."""
