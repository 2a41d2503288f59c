"""The DuckDB project store: the only package that writes SQL."""

from arte_core.store.core import Store, utcnow
from arte_core.store.schema import SCHEMA_VERSION, TABLES

__all__ = ["Store", "utcnow", "SCHEMA_VERSION", "TABLES"]
