"""Sorting and paging of the studio's tables.

Sort columns and directions come from whitelists, so a value typed by a user never becomes SQL; page
sizes are bounded.
"""

from __future__ import annotations

from arte_core.errors import ArteError

DIRECTIONS = {"asc": "ASC", "desc": "DESC"}
MAX_PAGE_SIZE = 500


def order_by(sorts: dict[str, str], sort: str, direction: str, tie_breakers: str) -> str:
    """An ORDER BY list for `sort` (a key of `sorts`, the whitelist) and `direction`, then `tie_breakers`."""
    if sort not in sorts:
        raise ArteError(f"cannot sort by {sort!r}; choose one of {', '.join(sorts)}.")
    if direction not in DIRECTIONS:
        raise ArteError(f"sort direction {direction!r} is neither 'asc' nor 'desc'.")
    return f"{sorts[sort]} {DIRECTIONS[direction]} NULLS LAST, {tie_breakers}"


def page_bounds(page: int, page_size: int) -> tuple[int, int]:
    """(LIMIT, OFFSET) of a 1-based page."""
    if page_size < 1 or page_size > MAX_PAGE_SIZE:
        raise ArteError(f"page size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}.")
    page = max(1, int(page))
    return page_size, (page - 1) * page_size


def page_count(total: int, page_size: int) -> int:
    """Pages needed for `total` rows (at least one, which may be empty)."""
    return max(1, -(-total // page_size))
