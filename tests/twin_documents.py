"""Pieces of the synthetic twin incident documents the twin and calibration tests write (schema v2)."""

START = "2024-03-05T10:00:00+00:00"
SOURCE = [{"id": "model", "kind": "postmortem", "title": "Synthetic twin", "publisher": "the test suite",
           "url": "https://example.org/twin"}]


def at(minutes: float) -> str:
    """The instant ``minutes`` after :data:`START`."""
    return f"2024-03-05T{10 + int(minutes // 60):02d}:{int(minutes % 60):02d}:00+00:00"


def unknown(low, high, unit, scale="linear"):
    """A value not published, with its prior range."""
    return {"unknown": {"range": [low, high], "unit": unit, "scale": scale, "reason": "Synthetic prior."}}


def published(value, unit):
    """A published value, sourced to the synthetic postmortem."""
    return {"value": value, "unit": unit, "sources": ["model"]}
