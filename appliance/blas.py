"""One BLAS thread per process: the appliance's parallelism comes from its requests.

NumPy's OpenBLAS starts a thread per core for products above a small size and spins
them while it waits. On a host whose other cores are busy (other requests, the PII
workers, the load itself) those threads wait for a core instead: spaCy on a short
prompt went from 2.9 ms to 42-84 ms with one core taken by another process, against
2.9 ms with one thread. Every process that multiplies matrices on a request path (a
server process, a PII worker) calls this once at start.
"""

from __future__ import annotations


def one_blas_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
