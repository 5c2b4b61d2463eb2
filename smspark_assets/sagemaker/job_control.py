"""Describe, wait for and stop SageMaker's long-running jobs, one piece of code for every kind.

Training, transform and tuning jobs differ only in the names of their API calls and fields
(``describe_training_job`` / ``TrainingJobName`` / ``TrainingJobStatus`` ...) and share their life cycle:
InProgress → (Stopping →) Completed | Failed | Stopped. A :class:`JobKind` holds those names; the functions
here do the rest, so that a fix to stopping or waiting reaches every kind at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import ClientError, WaiterError

from smspark_assets.interruption import stopped_if_abandoned

ENDED = ("Completed", "Failed", "Stopped")
# What SageMaker answers to Describe* of a name it does not know (AWS says ValidationException; some
# local or older endpoints say ResourceNotFound).
NOT_FOUND_CODES = ("ValidationException", "ResourceNotFound")
# After Stop*, how long to wait to see the job Stopping (it says so within seconds).
STOP_CONFIRM_SECONDS = 30.0
STOP_POLL_SECONDS = 1.0
# The shortest poll of a waiter.
MIN_POLL_SECONDS = 0.1


def is_not_found(exc: ClientError) -> bool:
    """True when ``exc`` is SageMaker saying the named resource does not exist."""
    return exc.response["Error"]["Code"] in NOT_FOUND_CODES


def describe_or_none(call: Callable[..., dict], **kwargs: Any) -> dict[str, Any] | None:
    """``call(**kwargs)`` (a SageMaker Describe*), or None when the resource does not exist."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


@dataclass(frozen=True)
class JobKind:
    """The API names of one kind of SageMaker job (e.g. ``training job``: ``describe_training_job``, ...)."""

    label: str  # "training job": how messages name it
    describe_call: str  # "describe_training_job"
    stop_call: str  # "stop_training_job"
    name_field: str  # "TrainingJobName"
    status_field: str  # "TrainingJobStatus"
    waiter: str | None = None  # botocore's waiter until it ends, where there is one
    stopping_note: str = ""  # said when stopping it, e.g. what else stops with it

    def describe(self, sm: Any, name: str) -> dict[str, Any]:
        """The job's description (raises when it does not exist)."""
        return getattr(sm, self.describe_call)(**{self.name_field: name})

    def find(self, sm: Any, name: str) -> dict[str, Any] | None:
        """The job's description, or None when no job has that name."""
        return describe_or_none(getattr(sm, self.describe_call), **{self.name_field: name})

    def status(self, sm: Any, name: str) -> str:
        return self.describe(sm, name)[self.status_field]


def stop_job(sm: Any, kind: JobKind, name: str, log: Callable[[str], None] = print,
             confirm_seconds: float = STOP_CONFIRM_SECONDS) -> str:
    """Stop job ``name`` unless it already ended, and wait up to ``confirm_seconds`` to see it Stopping.

    Returns what happened, for the message of the exception that made us stop it.
    """
    status = kind.status(sm, name)
    if status in ENDED:
        return f"{kind.label} {name} had already ended {status}"
    if status != "Stopping":  # a second Stop* of a Stopping job is refused
        log(f"stopping {kind.label} {name} ({status}){kind.stopping_note}")
        getattr(sm, kind.stop_call)(**{kind.name_field: name})
    deadline = time.monotonic() + confirm_seconds
    while True:
        status = kind.status(sm, name)
        if status in ("Stopping", *ENDED) or time.monotonic() >= deadline:
            return f"stopped {kind.label} {name} (now {status})"
        time.sleep(STOP_POLL_SECONDS)


def waiter_config(poll_seconds: float, timeout_seconds: float) -> dict[str, float]:
    """A botocore ``WaiterConfig`` that polls every ``poll_seconds`` (at least 0.1: the embedded stack
    answers in milliseconds, so sub-second polls end a short job's wait sooner) for ``timeout_seconds``."""
    delay = max(MIN_POLL_SECONDS, float(poll_seconds))
    return {"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout_seconds / delay))}


def wait_until_ended(sm: Any, kind: JobKind, name: str, poll_seconds: float, timeout_seconds: float,
                     failure: Callable[[str], Exception], log: Callable[[str], None] = print) -> dict[str, Any]:
    """Wait with botocore's waiter until job ``name`` ends, and describe it.

    A job that ended Failed or Stopped is returned (the caller reports its FailureReason). Anything else
    that ends the wait early (the run is cancelled, the waiter gives up after ``timeout_seconds``, a poll
    fails) stops the job first and raises ``failure``: nothing keeps billing unseen.
    """
    if kind.waiter is None:
        raise ValueError(f"botocore has no waiter for a {kind.label}: poll {kind.describe_call} instead")
    with stopped_if_abandoned(f"{kind.label} {name}", lambda: stop_job(sm, kind, name, log), failure, log):
        try:
            sm.get_waiter(kind.waiter).wait(**{kind.name_field: name},
                                            WaiterConfig=waiter_config(poll_seconds, timeout_seconds))
        except WaiterError as exc:
            # The waiter stops on Failed (a normal end, described below) but also when it gives up.
            desc = kind.describe(sm, name)
            if desc[kind.status_field] not in ENDED:  # gave up while it runs: stopped on the way out
                raise failure(f"waiting for {kind.label} {name} failed while it was "
                              f"{desc[kind.status_field]}: {exc}") from exc
            return desc
        return kind.describe(sm, name)
