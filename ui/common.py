"""What the studio's tabs share: the context of the top bar, the error guards (a dialog, or a warning that
leaves every output in place), row selection and paging."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import gradio as gr

from arte_core.errors import ArteError
from arte_core.studio import common as studio_common
from ui.space import signed_in_name

if TYPE_CHECKING:  # the UI reaches the store through the handlers; the type is for reading only
    from arte_core.store import Store


@dataclass
class StudioContext:
    """What every tab shares: the store, the mode and the run/student/user widgets of the top bar."""

    store: Store
    read_only: bool
    run: gr.Dropdown
    student: gr.Dropdown
    user: gr.Textbox
    runs_dir: str = "runs"
    refresh_button: gr.Button | None = None
    summary: gr.Markdown | None = None

    def who(self, request: gr.Request | None, typed: str | None) -> str:
        """The authenticated user when there is one (it cannot be typed over), else the typed name."""
        return studio_common.user_name(getattr(request, "username", None), typed)

    def require_writable(self, what: str) -> None:
        if self.read_only:
            raise gr.Error(f"This studio is read-only: {what} is disabled. Start it without ARTE_READ_ONLY to "
                           "record changes.", title="Read-only")


def guarded(fn: Callable) -> Callable:
    """Show an ArteError as a Gradio error dialog with its message (which says what to fix)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ArteError as exc:
            raise gr.Error(str(exc), title="Cannot do that", print_exception=False) from None
    return wrapper


def in_place(fn: Callable, n_outputs: int, notice: bool = False) -> Callable:
    """A listener whose errors stay in place: an ArteError shows a warning toast and leaves each of the
    `n_outputs` outputs as it was (gr.skip()), so no table or panel is blanked by an error pill.

    With `notice`, the listener has one more output after those: a gr.State that holds the warning
    ("" after a success), shown next to the form by `show_notice`; a State, so API callers see only the
    real outputs. Other exceptions (read-only refusals are gr.Error) still raise.
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except ArteError as exc:
            gr.Warning(str(exc), title="Cannot do that")
            skipped = tuple(gr.skip() for _ in range(n_outputs))
            return (*skipped, f"⚠️ {exc}") if notice else (skipped if n_outputs > 1 else gr.skip())
        if not notice:
            return result
        return (*(result if isinstance(result, tuple) else (result,)), "")
    return wrapper


def in_place_status(fn: Callable, n_outputs: int, at: int = 0) -> Callable:
    """Like `in_place`, for a listener with a status line among its `n_outputs` outputs (at index `at`):
    an ArteError shows there (and as a toast) and every other output stays as it was."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ArteError as exc:
            gr.Warning(str(exc), title="Cannot do that")
            values: list[Any] = [gr.skip() for _ in range(n_outputs)]
            values[at] = f"⚠️ {exc}"
            return tuple(values)
    return wrapper


# Where the reviewer's name is kept in the browser. A fixed secret, so the name survives a restart of
# the studio (a random one, Gradio's default, changes with every start); the name is no secret.
REVIEWER_STORAGE_KEY = "arte-reviewer-name"
REVIEWER_SECRET = "arte-studio-reviewer-name"


def remember_reviewer(ctx: StudioContext, demo: gr.Blocks) -> None:
    """The typed reviewer name persists in the browser (localStorage via gr.BrowserState) across reloads;
    a signed-in user's name (studio or Hugging Face login) comes from the login instead and is never
    replaced by a stored one. Call it outside the tabs: a hidden tab's components are not mounted."""
    stored = gr.BrowserState("", storage_key=REVIEWER_STORAGE_KEY, secret=REVIEWER_SECRET)

    def restore(name: str | None, request: gr.Request, profile: gr.OAuthProfile | None = None):
        if signed_in_name(request, profile) or not (name or "").strip():
            return gr.skip()
        return name.strip()

    def keep(name: str | None):
        return (name or "").strip()

    demo.load(restore, stored, ctx.user, api_visibility="private", show_progress="hidden")
    ctx.user.change(keep, ctx.user, stored, api_visibility="private", show_progress="hidden")


def notice_state(elem_id: str) -> tuple[gr.State, gr.Markdown]:
    """A warning line next to a form (`elem_id`), fed by the gr.State an `in_place(..., notice=True)`
    listener writes: (state, markdown)."""
    state = gr.State("")
    shown = gr.Markdown("", elem_id=elem_id, elem_classes=["arte-notice-inline"])
    state.change(lambda text: text, state, shown, api_visibility="private", show_progress="hidden")
    return state, shown


def selected_row_id(frame: Any, evt: gr.SelectData, column: str) -> str:
    """The id column of a clicked table row (from the row's values when Gradio sends them, else the table)."""
    if evt.row_value and frame is not None and column in frame.columns:
        return str(evt.row_value[list(frame.columns).index(column)])
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return str(frame.iloc[int(row)][column])


def page_listeners(query: Callable) -> tuple[Callable, Callable, Callable]:
    """(first page, previous page, next page) listeners of a paged `query(*filters, page_number)`;
    the previous and next listeners get the shown page number as their last input."""
    def first_page(*values: Any) -> Any:
        return query(*values, 1)

    def step(delta: int) -> Callable:
        def moved(*values: Any) -> Any:
            *rest, page_number = values
            return query(*rest, studio_common.page_number(page_number) + delta)
        return moved

    return first_page, step(-1), step(+1)
