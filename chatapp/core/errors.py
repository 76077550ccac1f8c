"""The errors services raise. Each carries an HTTP status and a message a person can read,
naming the limit it enforces; views turn them into responses, never into a 500."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class TurnConflict(ServiceError):
    status = 409


class LimitExceeded(ServiceError):
    status = 429


class NotFound(ServiceError):
    """Something the request names is not there - or is someone else's: the same answer."""

    status = 404


class RequestTooLarge(ServiceError):
    """What would be sent upstream exceeds the route's request size budget."""

    status = 413


class UploadRejected(ServiceError):
    """An upload that is not an acceptable image (400) or too large (413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class InvalidSettings(ServiceError):
    """Settings a model does not accept; `errors` maps each field to its message."""

    def __init__(self, message: str, errors: dict[str, str]) -> None:
        super().__init__(message)
        self.errors = errors
