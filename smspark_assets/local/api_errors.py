"""AWS-shaped errors of the local service: botocore turns them into the same ``ClientError`` codes as AWS."""

from __future__ import annotations

import json


class ApiError(Exception):
    """An error answered as ``{"__type": code, "message": ...}`` (JSON 1.1) or rest-json with ``x-amzn-
    ErrorType``.
    """

    def __init__(self, code: str, message: str, status: int = 400, **extra: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> bytes:
        return json.dumps(
            {"__type": self.code, "message": self.message, "Message": self.message, **self.extra}
        ).encode()


def validation(message: str) -> ApiError:
    """SageMaker's ``ValidationException`` (also what AWS answers for a Describe of a missing resource)."""
    return ApiError("ValidationException", message)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFound", message)


def in_use(message: str) -> ApiError:
    return ApiError("ResourceInUse", message)


def limit_exceeded(message: str) -> ApiError:
    return ApiError("ResourceLimitExceeded", message)
