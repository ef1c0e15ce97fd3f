"""HTTP bodies: requests are strict (unknown fields are errors), responses documented in /docs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["FeedbackEvent", "FeedbackRequest", "FeedbackResponse", "PredictResponse", "TRACK_ID_PATTERN"]

TRACK_ID_PATTERN = r"^[^/\\\x00-\x1f]{1,200}$"
"""Track ids: 1-200 characters, no slashes or control characters (and not '.' or '..')."""


class FeedbackEvent(BaseModel):
    """One listener event, as in an import file (validated by the importer's rules)."""

    model_config = ConfigDict(extra="forbid")

    track_id: str = Field(pattern=TRACK_ID_PATTERN)
    kind: str = Field(max_length=16, description="rating, like, dislike, play, skip or tag")
    value: str | float | None = Field(
        None,
        description="stars 1-5; milliseconds listened (at most the track's duration + 10 s, 4 h when unknown); "
        "a whole number of plays; or the tag text",
    )
    listener_id: str | None = Field(None, max_length=200)
    timestamp: str | float | None = Field(
        None,
        description="ISO 8601 or epoch seconds, at most 15 min in the future; default: when it arrives",
    )

    @field_validator("track_id")
    @classmethod
    def _not_a_path(cls, value: str) -> str:
        if value.strip(".") == "":
            raise ValueError(f"track_id {value!r} is not a track id")
        return value


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[FeedbackEvent] = Field(min_length=1)


class FeedbackResponse(BaseModel):
    stored: int = Field(description="events newly stored")
    duplicate: int = Field(description="events already stored (the same content, or sent twice in this request)")
    rejected: list[dict[str, Any]] = Field(description="[{index, reason}] of events set aside (quarantined)")
    replayed: bool = Field(
        False, description="true when this is the recorded answer to an earlier request with this Idempotency-Key"
    )


class PredictResponse(BaseModel):
    """One song: the label and every class probability, top tags, scores with intervals."""

    model_config = ConfigDict(extra="allow")

    track_id: str
    name: str
    duration: float
    run: str
    label: str | None = None
    probs: dict[str, float] = {}
    tags: dict[str, float] = {}
    scores: dict[str, float] = {}
    intervals: dict[str, list[float]] = {}
    stored: bool = False
    explanation: dict[str, Any] | None = None
