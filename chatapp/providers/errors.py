"""Errors an adapter raises. Each carries a message a person can act on.

    ProviderError                    anything that went wrong talking to an upstream
    ├── AuthenticationError          401: the key was rejected or missing
    ├── InsufficientCreditsError     AI/ML API 403, Segmind 406: the account is out of credits
    ├── RateLimitError               429: too many requests or concurrent streams (retryable)
    ├── BadRequestError              400/422: the upstream refused the request as invalid
    │   └── PromptBlockedError       Gemini: HTTP 200, no candidates, promptFeedback.blockReason
    ├── ModelUnavailableError        404/410: unknown, deprecated or retired model
    ├── UpstreamError                5xx: the upstream failed (retryable)
    │   └── MalformedResponseError   the upstream sent something we could not parse
    ├── UpstreamTimeout              no data within the read timeout, or 504 (not retried)
    └── UpstreamConnectionError      could not connect, or the connection dropped (retryable)

`retryable` errors are retried by the generation run, with backoff, only before the first
token: once text has reached the browser a retry would repeat or contradict it.
Messages never contain the API key: adapters pass upstream text through `redact()` first.
"""

from __future__ import annotations

from typing import Any


class ProviderError(Exception):
    code = "provider_error"
    retryable = False
    default_message = "The model provider returned an error."

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        upstream_request_id: str | None = None,
        detail: str = "",
    ) -> None:
        self.message = message or self.default_message
        self.status = status
        self.retry_after = retry_after
        self.upstream_request_id = upstream_request_id
        # The upstream's own words (redacted), kept for the log and the message's details.
        self.detail = detail
        super().__init__(self.message)


class AuthenticationError(ProviderError):
    code = "auth"
    default_message = "The provider rejected the API key. Check the key configured for this route."


class InsufficientCreditsError(ProviderError):
    code = "credits"
    default_message = "The provider account is out of credits. Top it up and press Retry."


class RateLimitError(ProviderError):
    code = "rate_limited"
    retryable = True
    default_message = "The provider is rate-limiting requests. Wait a moment and press Retry."


class BadRequestError(ProviderError):
    code = "bad_request"
    default_message = "The provider refused the request as invalid."


class PromptBlockedError(BadRequestError):
    """The prompt itself was refused (Gemini's `promptFeedback.blockReason`): no answer was
    generated at all. An error rather than an empty `Finish`, so the message ends failed with
    "Your prompt was blocked: ..." in place of an empty bubble. Not retryable as it stands:
    the same prompt gets the same verdict. `block_reason` is Gemini's own word for it."""

    code = "prompt_blocked"
    default_message = "Your prompt was blocked by the provider. Rephrase it and send it again."

    def __init__(
        self, message: str | None = None, *, block_reason: str = "", **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.block_reason = block_reason


class ModelUnavailableError(ProviderError):
    code = "model_unavailable"
    default_message = (
        "The provider does not offer this model (it may be deprecated). Choose another model."
    )


class UpstreamError(ProviderError):
    code = "upstream_error"
    retryable = True
    default_message = "The provider failed to answer. Press Retry in a moment."


class MalformedResponseError(UpstreamError):
    code = "malformed_response"
    retryable = False
    default_message = "The provider sent a response that could not be read."


class UpstreamTimeout(ProviderError):
    code = "timeout"
    default_message = "The provider took too long to answer."


class UpstreamConnectionError(ProviderError):
    code = "connection"
    retryable = True
    default_message = "Could not reach the provider, or the connection dropped."


def redact(text: str, *secrets: str) -> str:
    """Remove every occurrence of each secret from text bound for a person or a log line."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text
