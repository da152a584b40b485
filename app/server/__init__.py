"""`llada serve`: the OpenAI-compatible HTTP API (`api`) and the browser page (`web`), a thin
front end over the session layer's model host (app.session.host)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from app.server.api import Server
    from app.session.model import LoadedModel


def make_server(load: Callable[[], LoadedModel], *, model_id: str, defaults: dict[str, Any],
                api_key: Optional[str] = None, aliases: Sequence[str] = (),
                backend_name: str = "") -> Server:
    """Start the model host (loading the model) and build the API and the browser page on it."""
    from app.server.api import Server
    from app.server.web import PUBLIC_PATHS, web_routes
    from app.session.host import ModelHost

    host = ModelHost(load)
    host.start()
    return Server(host, model_id=model_id, defaults=defaults, api_key=api_key, aliases=aliases,
                  backend_name=backend_name, page=web_routes,
                  public_paths=PUBLIC_PATHS)
