"""A local stand-in for the Sage Sales Management REST API (v4), backed by SQLite.

``create_app`` builds the ASGI application, ``serve`` runs it with uvicorn and
``running_simulator`` starts it as a subprocess for tests and demonstrations.
"""

from .app import create_app
from .process import SimulatorProcess, running_simulator, serve

__all__ = ["SimulatorProcess", "create_app", "running_simulator", "serve"]
