"""A prompt's actions in order: "a person walks forward, then waves with the left hand" is two.

The engine generates a chained prompt one action after another in one clip (each part under
its own words, seeing the motion so far), as composed training clips teach the model to infill
a second action under its own caption. Only the connectors that say "after" are read ("then",
"and then", "after that", "afterwards"), so "walks and waves" stays one action, for the model
to read whole."""
from __future__ import annotations

import re

MAX_ACTIONS = 3  # a fourth and later are kept in the third's words
_CONNECTOR = re.compile(r"(?:,\s*|\s+)(?:and\s+)?(?:then|after\s+that|afterwards)\b,?\s*", re.IGNORECASE)


def split_actions(text: str) -> list[str]:
    """The text's actions in order (one item when it chains none), each stripped of the
    connector and the closing full stop."""
    parts = [p.strip(" .;") for p in _CONNECTOR.split(text)]
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return [text]
    if len(parts) > MAX_ACTIONS:
        parts = parts[: MAX_ACTIONS - 1] + [", then ".join(parts[MAX_ACTIONS - 1:])]
    return parts
