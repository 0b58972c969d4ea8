"""The audit log: encrypted, hash-chained, group-committed DuckDB segments (docs/audit.md).

DuckDB's native library must be loaded before regopy's: loading regopy first makes
``import duckdb`` abort the process ("double free or corruption"). ``appliance.config``
imports this package, so importing duckdb here orders the two in every process.
"""

import duckdb as _duckdb  # noqa: F401  (load order, see above)
