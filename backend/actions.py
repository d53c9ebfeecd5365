"""A prompt's actions in order: "a person walks forward, then waves with the left hand" is two.

The engine generates a chained prompt one action after another in one clip: each action on
its own, carried on from where the one before ends (Engine.generate). Only the connectors that say "after" are read ("then",
"and then", "after that", "afterwards"), so "walks and waves" stays one action, for the model
to read whole.

The later actions take the first one's subject ("a tired man walks, then waves" -> "a tired
man waves"), so they keep its style and read as the sentences the model was trained on."""
from __future__ import annotations

import re

MAX_ACTIONS = 3  # a fourth and later are kept in the third's words
# Words a later action can start with that already name who does it.
_OWN_SUBJECT = {"a", "an", "the", "he", "she", "they", "someone", "somebody", "this", "that", "his", "her", "their",
                "i", "we", "you", "it", "one"}
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
    who = subject(parts[0])
    return parts[:1] + [f"{who} {p}" if who and p.split()[0].lower() not in _OWN_SUBJECT else p for p in parts[1:]]


def subject(action: str) -> str:
    """Who does `action`: its words before the first verb, read as the first later word in the
    third person ("an old man raises his hand" -> "an old man"); "" when none is found."""
    words = action.split()
    for i, w in enumerate(words[1:], 1):
        if w.isalpha() and w.islower() and w.endswith("s") and not w.endswith("ss"):
            return " ".join(words[:i])
    return ""
