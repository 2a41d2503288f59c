"""What the studio's tabs share: the context of the top bar, the error guard, row selection and paging."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import gradio as gr

from arte_core.errors import ArteError
from arte_core.studio import common as studio_common

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
