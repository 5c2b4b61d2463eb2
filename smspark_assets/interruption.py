"""Stop what a step started when the step stops waiting for it.

A cancelled Dagster run raises ``DagsterExecutionInterruptedError`` (a ``BaseException``) inside the
step; Ctrl-C raises ``KeyboardInterrupt``; a waiter can give up or a poll can fail. In each case the
remote work (a SageMaker training job billing up to ``MaxRuntimeInSeconds``, an Athena query scanning
data) would go on running unseen. :func:`stopped_if_abandoned` wraps the wait: whatever ends it early,
the work is stopped first and the exception re-raised with a message naming it.

No Dagster import: interrupts are recognised as what they are in Python (``BaseException`` that is not
an ``Exception``), so the SageMaker layer stays usable outside Dagster.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def stopped_if_abandoned(what: str, stop: Callable[[], str], failure: Callable[[str], Exception] = RuntimeError,
                         log: Callable[[str], None] = print) -> Iterator[None]:
    """Run the body (a wait on ``what``); if it ends with any exception, call ``stop`` and re-raise.

    ``stop`` stops the work and returns what happened ("stopped it", "it had already ended Failed").
    An ``Exception`` is re-raised as ``failure(message)`` chained to it; an interrupt is re-raised as the
    same kind (so Dagster still records the step as interrupted) with the message naming the work.
    """
    try:
        yield
    except BaseException as exc:
        try:
            outcome = stop()
        except Exception as stop_error:  # the original failure matters more; say that stopping failed
            outcome = f"stopping it failed too ({_describe(stop_error)}): stop it by hand"
        message = f"{what} abandoned ({_describe(exc)}); {outcome}"
        log(message)
        if isinstance(exc, Exception):
            raise failure(message) from exc
        try:
            replacement = type(exc)(message)
        except Exception:  # an interrupt type that takes other arguments: keep it as it is
            exc.add_note(message)
            raise exc from None
        raise replacement from exc
