"""The one error type every layer raises; the protocol layer turns it into AWS's wire shape.

It lives at the package root (not in protocol/) so the service, store and auth layers can raise
AWS-shaped errors without importing the protocol layer.
"""

from __future__ import annotations


class ServiceError(Exception):
    """An error a client can see: AWS's error code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def not_found(message: str = "Secrets Manager can't find the specified secret.") -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def invalid_request(message: str) -> ServiceError:
    return ServiceError("InvalidRequestException", message)


def invalid_parameter(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)
