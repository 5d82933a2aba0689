"""Endpoint plugin for the Sage Sales Management REST API (v4), with its local simulator."""

from .client import SalesManagementClient

__all__ = ["SalesManagementClient"]
