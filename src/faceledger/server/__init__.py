"""FaceLedger as a service: FastAPI app factory, settings, API keys, routes and the web page.

>>> from faceledger.server import create_app, load_settings
>>> app = create_app(load_settings("faceledger.toml"))     # uvicorn.run(app)

Needs the ``server`` extra (``pip install 'faceledger[server]'``). Every route calls the
:class:`~faceledger.engine.Engine`, so every rule (policy, consent, authorization, ledger)
applies; see ``docs/service.md``.
"""

from __future__ import annotations

from .app import create_app
from .settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
