"""Policy decisions with OPA/Rego: embedded engine (regopy), OPA client, REST server.

DuckDB's native library must load before regopy's (the other order aborts the process
with "double free or corruption"); every module here that imports regopy sits under
this package, so ordering the two here covers them all.
"""

import appliance.audit  # noqa: F401  (loads duckdb before regopy, see above)
