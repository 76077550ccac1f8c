"""Gemini's safety vocabulary in a person's words, and the report shown under an answer.

One owner for every word about Gemini safety: the harm categories a person can adjust (the
settings panel's selects), the block thresholds, the categories and probabilities a rating can
carry, and why a prompt was blocked. The parameter registry (`providers.params`), the Gemini
wire code and the templates all read these tables; none spells a category itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The four categories a request can adjust (docs/PROTOCOLS.md §3), in the panel's order.
ADJUSTABLE_CATEGORIES: Mapping[str, str] = {
    "HARM_CATEGORY_HARASSMENT": "Harassment",
    "HARM_CATEGORY_HATE_SPEECH": "Hate speech",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT": "Sexually explicit",
    "HARM_CATEGORY_DANGEROUS_CONTENT": "Dangerous content",
}
HARM_CATEGORIES = tuple(ADJUSTABLE_CATEGORIES)

# Block thresholds, strictest first.
THRESHOLDS: Mapping[str, str] = {
    "BLOCK_LOW_AND_ABOVE": "Block low and above",
    "BLOCK_MEDIUM_AND_ABOVE": "Block medium and above",
    "BLOCK_ONLY_HIGH": "Block only high",
    "BLOCK_NONE": "Block none",
    "OFF": "Off",
}

# Every category a rating may name (the adjustable ones and those Google rates on its own).
CATEGORY_WORDS: Mapping[str, str] = {
    **ADJUSTABLE_CATEGORIES,
    "HARM_CATEGORY_CIVIC_INTEGRITY": "Civic integrity",
    "HARM_CATEGORY_JAILBREAK": "Jailbreak",
    "HARM_CATEGORY_IMAGE_HATE": "Hate (image)",
    "HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT": "Dangerous content (image)",
    "HARM_CATEGORY_IMAGE_HARASSMENT": "Harassment (image)",
    "HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT": "Sexually explicit (image)",
    "HARM_CATEGORY_UNSPECIFIED": "Unspecified",
}
PROBABILITY_WORDS: Mapping[str, str] = {
    "NEGLIGIBLE": "negligible",
    "LOW": "low",
    "MEDIUM": "medium",
    "HIGH": "high",
    "HARM_PROBABILITY_UNSPECIFIED": "not rated",
}
# promptFeedback.blockReason, as the end of "Your prompt was blocked: ...".
BLOCK_REASONS: Mapping[str, str] = {
    "SAFETY": "the safety filters flagged it",
    "BLOCKLIST": "it contains terms on the provider's blocklist",
    "PROHIBITED_CONTENT": "it may contain prohibited content",
    "IMAGE_SAFETY": "an attached image was flagged by the safety filters",
    "JAILBREAK": "it looks like an attempt to get around the model's rules",
    "MODEL_ARMOR": "a Model Armor policy stopped it",
    "OTHER": "the provider gave no reason",
    "BLOCKED_REASON_UNSPECIFIED": "the provider gave no reason",
}
UNKNOWN_BLOCK = "the provider's filters refused it"

# Upstream data shown as text: bounded, whatever a provider sends.
_MAX_RATINGS = 24
_MAX_WORDS = 80
_PROBABLE = ("MEDIUM", "HIGH")


def words(value: Any, known: Mapping[str, str], prefix: str = "") -> str:
    """A wire word in a person's words: from `known`, else lower case without underscores."""
    text = str(value)[:_MAX_WORDS]
    if text in known:
        return known[text]
    return text.removeprefix(prefix).replace("_", " ").lower()


def category_words(category: Any) -> str:
    return words(category, CATEGORY_WORDS, "HARM_CATEGORY_")


def block_words(reason: str) -> str:
    return BLOCK_REASONS.get(reason, UNKNOWN_BLOCK)


def flagged_categories(feedback: Any) -> list[str]:
    """Harm categories a prompt was flagged for, in lower-case words ("harassment")."""
    ratings = feedback.get("safetyRatings") if isinstance(feedback, dict) else None
    flagged = []
    for rating in ratings if isinstance(ratings, list) else ():
        if not isinstance(rating, dict):
            continue
        if rating.get("blocked") is True or rating.get("probability") in _PROBABLE:
            category = str(rating.get("category", ""))
            flagged.append(category.removeprefix("HARM_CATEGORY_").replace("_", " ").lower())
    return [name for name in flagged if name]


@dataclass(frozen=True, slots=True)
class Rating:
    category: str
    level: str
    blocked: bool


@dataclass(frozen=True, slots=True)
class RatingSection:
    title: str
    ratings: tuple[Rating, ...]


@dataclass(frozen=True, slots=True)
class SafetyReport:
    """What the "Safety ratings" disclosure under an answer shows."""

    block: str
    sections: tuple[RatingSection, ...]


def report(extras: Any) -> SafetyReport | None:
    """Why the prompt was blocked, and the ratings of the prompt and of the answer (Gemini's
    `promptFeedback` and `safetyRatings`, kept in a message's provider extras as sent). None
    when there is nothing to show."""
    extras = extras if isinstance(extras, dict) else {}
    feedback = extras.get("prompt_feedback")
    feedback = feedback if isinstance(feedback, dict) else {}
    block = ""
    reason = feedback.get("blockReason")
    if isinstance(reason, str) and reason:
        reason = reason[:_MAX_WORDS]
        block = f"{block_words(reason)} ({reason})"
    sections = []
    for title, ratings in (
        ("Your prompt", feedback.get("safetyRatings")),
        ("This answer", extras.get("safety_ratings")),
    ):
        rows = _ratings(ratings)
        if rows:
            sections.append(RatingSection(title, rows))
    if not block and not sections:
        return None
    return SafetyReport(block=block, sections=tuple(sections))


def _ratings(value: Any) -> tuple[Rating, ...]:
    rows = []
    for rating in value[:_MAX_RATINGS] if isinstance(value, list) else ():
        if not isinstance(rating, dict) or not rating.get("category"):
            continue
        level = rating.get("probability")
        severity = rating.get("severity")
        details = []
        if level:
            details.append(words(level, PROBABILITY_WORDS) + " probability")
        if severity and severity != "HARM_SEVERITY_UNSPECIFIED":
            details.append(words(severity, {}, "HARM_SEVERITY_") + " severity")
        rows.append(
            Rating(
                category=category_words(rating["category"]),
                level=", ".join(details) or "not rated",
                blocked=rating.get("blocked") is True,
            )
        )
    return tuple(rows)
