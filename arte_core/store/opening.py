"""Opening a store file: its folder, the DuckDB connection, the checks that the file is a DuckDB
database and ARTE's of a schema this code reads, and the schema's creation or upgrade. Each refusal
is an ArteError naming the path and what to do instead."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from arte_core.errors import ArteError
from arte_core.store.schema import MIGRATIONS, SCHEMA_VERSION, TABLES, create_statements

if TYPE_CHECKING:
    from arte_core.store.core import Store


def connect(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to the store at `path`, creating its folder for a read-write store."""
    folder = Path(path).parent
    if not read_only:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            file_above = next((p for p in (folder, *folder.parents) if p.is_file()), folder)
            raise ArteError(f"cannot create the store {path}: {file_above} is a file, not a folder; "
                            "choose a --db path in a folder.") from None
        except OSError as exc:
            raise ArteError(f"cannot create the folder {folder} for the store {path}: "
                            f"{exc.strerror or exc}; choose another --db path.") from None
    try:
        return duckdb.connect(path, read_only=read_only)
    except duckdb.IOException as exc:
        if "not a valid DuckDB database" in str(exc):
            raise ArteError(f"{path} is not a DuckDB database (DuckDB cannot read the file); pass an "
                            "ARTE Studio store or a new file name to --db.") from None
        if "lock" not in str(exc).lower():
            raise ArteError(f"cannot open the store {path}: {exc}") from None
        raise ArteError(
            f"cannot open the store {path}: {exc}. Another process may hold it open for "
            "writing (the studio or a CLI run); stop it or use another --db."
        ) from None


def refuse_a_foreign_database(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """A DuckDB file with tables but no schema_version is someone else's database: writing ARTE's
    tables into it would change a file the user never meant as a store."""
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND NOT temporary "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal "
        "AND NOT temporary ORDER BY 1", [catalog, catalog]).fetchall()]
    if names and "schema_version" not in names:
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        raise ArteError(f"{path} is not an ARTE Studio store: it is a DuckDB database with other tables "
                        f"({shown}) and no schema_version table; pass an ARTE Studio store or a new file "
                        "name to --db.")


def create_or_upgrade_schema(store: "Store") -> None:
    """Create the tables of a new store, or upgrade one written by an older ARTE Studio, in one
    transaction; a store of a newer schema is refused before anything is written to it."""
    with store.transaction():
        for stmt in create_statements():
            store.con.execute(stmt)
        version = store.con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
        if version is None:
            store.con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])
        elif version > SCHEMA_VERSION:
            check_version(store.con, store.path)  # raises, and the transaction rolls back the created tables
        elif version < SCHEMA_VERSION:
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS.get(target, []):
                    store.con.execute(stmt)
            store.con.execute("DELETE FROM schema_version")
            store.con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])


def check_version(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Refuse a store this ARTE Studio cannot read: no schema_version table, or a newer or (read-only,
    so not upgraded) older schema."""
    try:
        version = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
    except duckdb.CatalogException:
        raise ArteError(f"{path} is not an ARTE Studio store (no schema_version table).") from None
    if version is not None and version > SCHEMA_VERSION:
        raise ArteError(f"{path} was written by a newer ARTE Studio (schema {version}); upgrade arte-studio.")
    if version is not None and version < SCHEMA_VERSION:  # only a read-only store gets here unmigrated
        raise ArteError(f"{path} has the older store schema {version} (this ARTE Studio uses "
                        f"{SCHEMA_VERSION}); open it once read-write to upgrade it in place: start the studio "
                        f"on it without --read-only (`python app.py --db {path}`) or run any stage "
                        f"on it, while no other process holds it.")


def holds_rows(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any ARTE table holds a row (the schema_version row aside); True when it cannot tell."""
    counts = " + ".join(f"(SELECT count(*) FROM {t})" for t in TABLES if t != "schema_version")
    try:
        return bool(con.execute(f"SELECT {counts}").fetchall()[0][0])
    except duckdb.Error:
        return True


def remove_store_files(path: str) -> None:
    for leftover in (Path(path), Path(path + ".wal")):
        leftover.unlink(missing_ok=True)
