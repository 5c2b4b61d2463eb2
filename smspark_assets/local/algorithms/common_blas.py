"""One BLAS thread for mini-batch training loops.

The products of a mini-batch loop are small (e.g. 1000 x 50 by 50 x 24). A multi-threaded BLAS spends
more on waking and synchronising its threads than it gains on them -- measured 10x slower per product on
a loaded 2-core machine -- and the second core is better used by the channel's prefetch thread, which
decodes the next block while the model trains on the current one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from threadpoolctl import threadpool_limits


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit BLAS (OpenBLAS / MKL) to one thread inside the block; restored afterwards."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield
