"""The studio on a public Hugging Face Space (`SPACE_ID` set): every visitor decides in a private sandbox
(arte_core.studio.sandbox), the Hugging Face login names the reviewer, and the page warns about compute
and persistence. Off a Space everything here steps aside: the tabs use the store itself and the typed
name is the reviewer's.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
from typing import TYPE_CHECKING, Any

import gradio as gr
from gradio.context import LocalContext

from arte_core.studio.sandbox import SessionRoutedStore, SessionStores, on_a_space

if TYPE_CHECKING:
    from arte_core.store import Store


def visitor_session() -> str | None:
    """The session id of the request being served (Gradio's, one per page load), or None outside a request."""
    return getattr(LocalContext.request.get(None), "session_hash", None)


def tab_store(store: Store) -> Store | SessionRoutedStore:
    """What the tabs read and write: on a Space, each visitor's own sandbox over `store`; else `store`."""
    if not on_a_space():
        return store
    stores = SessionStores(store)
    atexit.register(stores.close)  # the copies' temp folder goes with the process
    return SessionRoutedStore(stores, visitor_session)


def wire_sandbox_cleanup(demo: gr.Blocks, tab_store_: Any) -> None:
    """A visitor who leaves takes their sandbox along (its folder is deleted)."""
    if not isinstance(tab_store_, SessionRoutedStore):
        return

    def drop_sandbox(request: gr.Request):
        tab_store_.stores.discard(getattr(request, "session_hash", None))

    demo.unload(drop_sandbox)


def oauth_enabled() -> bool:
    """Hugging Face sign-in: on a Space whose README metadata sets `hf_oauth: true` (it provides
    OAUTH_CLIENT_ID), with gradio[oauth]'s libraries installed (Gradio refuses to start a LoginButton
    without them). Gradio's LoginButton off a Space would only mock a login."""
    libraries = all(importlib.util.find_spec(name) is not None for name in ("authlib", "itsdangerous"))
    return on_a_space() and bool(os.environ.get("OAUTH_CLIENT_ID")) and libraries


def login_button() -> gr.LoginButton | None:
    if not oauth_enabled():
        return None
    return gr.LoginButton("Sign in with Hugging Face to name your decisions", size="sm", scale=1,
                          elem_id="hf-login")


def signed_in_name(request: gr.Request | None, profile: Any) -> str | None:
    """The reviewer's name from a studio login or the Hugging Face login; None when neither."""
    username = getattr(request, "username", None)
    if username:
        return username
    if profile is not None and oauth_enabled():
        return getattr(profile, "username", None) or profile.get("preferred_username")
    return None
