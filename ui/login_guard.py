"""The login page shows a visitor who has not logged in nothing of the app.

With `auth`, Gradio 6 answers `GET /` for a stranger with its login page, but that page still embeds
`window.gradio_api_info`: every endpoint with its default values, which hold run ids, model names and
the server's paths (e.g. the runs folder in the Runs tab's config). `/config` and `/gradio_api/info`
answer 401, and Gradio has no option to leave the description out, so this ASGI middleware (installed by
`ui.app.launch_kwargs`) replaces it with an empty one in every HTML page a stranger gets. The signed-in
page is untouched.
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request

Message = dict[str, Any]
ASGIApp = Callable[[dict, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

# The template writes `<script>window.gradio_api_info = {…};</script>`; its JSON has "<" escaped,
# so the first `;</script>` ends it.
_API_INFO = re.compile(rb"window\.gradio_api_info\s*=\s*.*?;\s*</script>", re.S)
_EMPTY_API_INFO = b'window.gradio_api_info = {"named_endpoints": {}, "unnamed_endpoints": {}};</script>'
# Served instead of a page whose API description could not be found and removed (a changed Gradio template):
# a broken login page is better than one that gives the app away.
_REFUSED_PAGE = (b"<!doctype html><title>ARTE Studio</title><p>This page cannot be shown before you log in, and the "
                 b"login page could not be prepared (ui/login_guard.py does not know this Gradio version's page).</p>")


def is_stranger(scope: dict) -> bool:
    """True when the app has a login and this request carries no session of a signed-in user."""
    app = scope.get("app")
    if getattr(app, "auth", None) is None or not hasattr(app, "tokens"):
        return False  # no login (an auth_dependency app answers strangers 401 itself)
    cookies = Request(scope).cookies
    token = (cookies.get(f"access-token-{app.cookie_id}")
             or cookies.get(f"access-token-unsecure-{app.cookie_id}"))
    return app.tokens.get(token) is None


def hide_api_info(page: bytes) -> bytes:
    """The page with an empty API description (the whole page refused when it cannot be removed)."""
    hidden, found = _API_INFO.subn(_EMPTY_API_INFO, page)
    if not found and b"gradio_api_info" in page:
        return _REFUSED_PAGE
    return hidden


class HideAppFromStrangers:
    """ASGI middleware: every HTML page a stranger gets goes out without the app's API description."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not is_stranger(scope):
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {"start": None, "body": []}

        async def send_hidden(message: Message) -> None:
            if message["type"] == "http.response.start":
                if Headers(raw=message["headers"]).get("content-type", "").startswith("text/html"):
                    held["start"] = message  # held until the whole page is in
                    return
            elif message["type"] == "http.response.body" and held["start"] is not None:
                held["body"].append(message.get("body", b""))
                if message.get("more_body"):
                    return
                page = hide_api_info(b"".join(held["body"]))
                headers = MutableHeaders(raw=list(held["start"]["headers"]))
                headers["content-length"] = str(len(page))
                await send({**held["start"], "headers": headers.raw})
                message = {"type": "http.response.body", "body": page, "more_body": False}
            await send(message)

        await self.app(scope, receive, send_hidden)
