"""Errors of the SageMaker layer that both the client side (before a job starts) and the local service raise."""


class AlgorithmError(Exception):
    """Base of the errors an algorithm raises on purpose; the message is shown to the user as is."""


class HyperparameterError(AlgorithmError, ValueError):
    """A hyperparameter is missing, unknown or out of range. The message names the allowed values."""
