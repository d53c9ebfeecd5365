"""Labels to captions: one vocabulary of contents and styles for both Bandai datasets, and
several natural paraphrases per (content, style) for text-conditioned training."""
from __future__ import annotations

import random
import re

# Dataset-specific names that mean the same thing share one label.
STYLE_ALIASES = {"old": "elderly", "tired": "exhausted", "masculinity": "masculine",
                 "childish": "youthful", "children": "youthful"}
CONTENT_ALIASES: dict[str, str] = {}

# Verb phrases in the third person, present tense.
CONTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "walk": ("walks forward", "walks straight ahead", "takes a walk forward", "is walking forward"),
    "run": ("runs forward", "jogs forward", "runs straight ahead", "is running forward"),
    "dash": ("sprints forward", "dashes ahead at full speed", "breaks into a sprint"),
    "walk-back": ("walks backwards", "steps backwards", "walks backward away from the front"),
    "walk-left": ("walks to the left", "steps sideways to the left", "moves to the left on foot"),
    "walk-right": ("walks to the right", "steps sideways to the right", "moves to the right on foot"),
    "walk-turn-left": ("walks forward, turning left", "walks and turns to the left",
                       "walks in a curve to the left"),
    "walk-turn-right": ("walks forward, turning right", "walks and turns to the right",
                        "walks in a curve to the right"),
    "bow": ("bows", "bows politely", "takes a bow", "bends forward in a bow"),
    "bye": ("waves goodbye with one hand", "waves a hand to say bye", "says goodbye with a wave"),
    "byebye": ("waves goodbye with both hands", "waves both arms to say bye-bye",
               "says bye-bye waving both hands"),
    "guide": ("points the way with an arm", "gestures to guide someone", "shows someone the way"),
    "respond": ("raises a hand to respond", "answers with a small gesture", "responds with a nod and a gesture"),
    "call": ("beckons someone over", "calls someone with a waving hand", "waves someone closer"),
    "punch": ("throws a punch", "punches forward", "strikes with a fist"),
    "kick": ("kicks", "throws a kick", "kicks forward with one leg"),
    "slash": ("slashes with a sword", "swings a blade", "makes a slashing attack"),
    "dance-long": ("dances", "performs a long dance", "dances energetically"),
    "dance-short": ("dances briefly", "does a short dance", "performs a quick dance move"),
    "wave-both-hands": ("waves with both hands", "waves both hands in the air", "waves both arms"),
    "wave-left-hand": ("waves with the left hand", "waves the left hand", "gives a wave with the left hand"),
    "wave-right-hand": ("waves with the right hand", "waves the right hand", "gives a wave with the right hand"),
    "raise-up-both-hands": ("raises both hands", "lifts both arms up", "puts both hands in the air"),
    "raise-up-left-hand": ("raises the left hand", "lifts the left arm up", "puts the left hand up"),
    "raise-up-right-hand": ("raises the right hand", "lifts the right arm up", "puts the right hand up"),
}

# Who does it (noun phrases) and how (adverbs) per style.
STYLE_SUBJECTS: dict[str, tuple[str, ...]] = {
    "normal": ("a person", "someone", "a man", "a woman"),
    "happy": ("a happy person", "a cheerful person", "someone in a good mood"),
    "sad": ("a sad person", "a gloomy person", "someone who feels down"),
    "angry": ("an angry person", "a furious person", "someone who is annoyed"),
    "proud": ("a proud person", "a confident person", "someone full of pride"),
    "not-confident": ("an insecure person", "a timid person", "someone who lacks confidence"),
    "masculine": ("a masculine person", "a macho man", "someone with a manly bearing"),
    "feminine": ("a feminine person", "a graceful woman", "someone with a feminine manner"),
    "youthful": ("a child", "a youthful person", "a lively youngster"),
    "elderly": ("an elderly person", "an old man", "an old woman", "a frail old person"),
    "exhausted": ("an exhausted person", "a tired person", "someone worn out"),
    "active": ("an energetic person", "an active person", "someone full of energy"),
    "musical": ("a theatrical person", "a musical performer", "someone acting like in a musical"),
    "giant": ("a giant", "a huge, heavy person", "someone big and lumbering"),
    "chimpira": ("a thug", "a swaggering punk", "a street tough"),
}
STYLE_ADVERBS: dict[str, tuple[str, ...]] = {
    "normal": ("normally", "in a neutral way", "casually"),
    "happy": ("happily", "cheerfully", "joyfully"),
    "sad": ("sadly", "gloomily", "dejectedly"),
    "angry": ("angrily", "furiously", "in a rage"),
    "proud": ("proudly", "with confidence", "with chest out"),
    "not-confident": ("timidly", "hesitantly", "without confidence"),
    "masculine": ("in a masculine way", "with a manly swagger", "boldly"),
    "feminine": ("in a feminine way", "gracefully", "elegantly"),
    "youthful": ("like a child", "in a youthful way", "playfully"),
    "elderly": ("like an old person", "slowly and stiffly", "with the care of old age"),
    "exhausted": ("wearily", "as if exhausted", "tiredly"),
    "active": ("energetically", "actively", "with lots of energy"),
    "musical": ("theatrically", "like in a musical", "with theatrical flair"),
    "giant": ("heavily, like a giant", "with huge, heavy steps", "ponderously"),
    "chimpira": ("like a thug", "with a swagger", "menacingly"),
}

# More wordings, used only to widen the generator's training captions (the dataset's captions,
# and so the evaluation's test captions, come from the tables above). Kept free of the words that
# the out-of-template prompts (backend/eval_t2m.py) use, so those stay a test of free wording.
MORE_CONTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "walk": ("walks", "goes for a walk", "paces forward", "ambles forward",
             "steps forward one foot after the other", "makes their way forward on foot"),
    "run": ("runs", "runs steadily", "moves forward running", "starts running",
            "goes jogging"),
    "dash": ("sprints", "bolts forward", "runs as hard as possible"),
    "walk-back": ("backs away", "retreats one step at a time", "walks in reverse"),
    "walk-left": ("sidesteps to the left", "moves sideways leftward", "crosses to the left with side steps"),
    "walk-right": ("sidesteps to the right", "moves sideways rightward", "crosses to the right with side steps"),
    "walk-turn-left": ("walks and then turns left", "makes a left turn on foot", "walks, taking a left turn",
                       "heads to the left on foot"),
    "walk-turn-right": ("walks and then turns right", "makes a right turn on foot",
                        "walks, taking a right turn", "heads to the right on foot"),
    "wave-both-hands": ("waves hi with both hands", "gives a wave with two hands", "waves both hands side to side"),
    "wave-left-hand": ("waves hi with the left hand", "waves the left hand side to side",
                       "signals with a wave of the left hand"),
    "wave-right-hand": ("waves hi with the right hand", "waves the right hand side to side",
                        "signals with a wave of the right hand"),
    "raise-up-both-hands": ("raises both arms overhead", "lifts both hands above the head", "holds both arms up",
                            "reaches up with both hands", "stretches both arms upward"),
    "raise-up-left-hand": ("raises the left arm overhead", "holds the left hand up", "reaches up with the left hand",
                           "lifts the left hand above the head"),
    "raise-up-right-hand": ("raises the right arm overhead", "holds the right hand up",
                            "reaches up with the right hand", "lifts the right hand above the head"),
}
MORE_STYLE_SUBJECTS: dict[str, tuple[str, ...]] = {
    "normal": ("an ordinary person", "an adult"),
    "active": ("a sporty person", "a vigorous person", "someone brimming with energy"),
    "elderly": ("a senior", "an aged person", "an old person"),
    "exhausted": ("a fatigued person", "a drained person", "someone out of breath"),
    "feminine": ("an elegant woman", "a poised woman"),
    "masculine": ("a manly man", "a rugged man", "a strong man"),
    "youthful": ("a young child", "a small child", "a schoolchild"),
}
MORE_STYLE_ADVERBS: dict[str, tuple[str, ...]] = {
    "normal": ("in an ordinary way", "calmly"),
    "active": ("vigorously", "briskly", "with vigour"),
    "elderly": ("stiffly", "carefully, like an aged person", "with slow, stiff movements"),
    "exhausted": ("sluggishly", "with heavy fatigue", "limply"),
    "feminine": ("delicately", "with feminine grace", "softly"),
    "masculine": ("in a manly way", "ruggedly", "with broad, strong movements"),
    "youthful": ("childishly", "with childlike energy", "in a childlike way"),
}

TEMPLATES = (
    "{subject} {verb}.",
    "{subject} {verb} {adverb}.",
    "{neutral} {verb} {adverb}.",
    "{subject} {verb}, {adverb}.",
)


# Words that decide a label by themselves; never used as noise, so noise cannot relabel a caption.
_LABEL_WORDS = {"left", "right", "up", "down", "both", "back", "backward", "backwards", "forward", "forwards",
                "ahead", "front", "side", "hand", "hands", "arm", "arms", "turn", "turns", "curve", "around"}


def table_words() -> set[str]:
    """Every word the caption tables (template and wide) use."""
    tables = (CONTENT_PHRASES, STYLE_SUBJECTS, STYLE_ADVERBS, MORE_CONTENT_PHRASES, MORE_STYLE_SUBJECTS,
              MORE_STYLE_ADVERBS)
    return {w for table in tables for phrases in table.values() for p in phrases for w in _words(p)}


def noise_words(vocabulary, exclude: set[str] = frozenset()) -> list[str]:
    """Plain lower-case words (4+ letters) from a text tokenizer's vocabulary, less the words of
    the caption tables, the label-deciding words and `exclude`: the noise `noisy` draws from."""
    drop = table_words() | _LABEL_WORDS | {w.lower() for w in exclude}
    # A word that starts a token carries the tokenizer's space mark: byte-level BPE's or SentencePiece's.
    words = {t[1:] for t in vocabulary if t[:1] in ("\u0120", "\u2581") and t[1:].isalpha() and t[1:].islower()}
    return sorted(w for w in words if len(w) >= 4 and w not in drop)


def noisy(text: str, rng: random.Random, words: list[str], replace: float = 0.15, drop: float = 0.1) -> str:
    """`text` with some words swapped for random ones and some dropped (never all).

    Captions from the tables name every motion in a few dozen words; a user's prompt often has
    a verb or noun the generator never saw. Trained on half-known sentences, it learns to read
    the words it does know ("... right fist up") instead of falling back on one habitual motion
    (the random-replacement and deletion of EDA, Wei & Zou 2019)."""
    out = []
    for w in text.split():
        r = rng.random()
        if r < drop:
            continue
        out.append(rng.choice(words) if r < drop + replace else w)
    return " ".join(out) if out else text


def normalize_content(name: str) -> str:
    name = name.strip().lower()
    return CONTENT_ALIASES.get(name, name)


def normalize_style(name: str) -> str:
    name = name.strip().lower()
    return STYLE_ALIASES.get(name, name)


def captions_for(content: str, style: str, n: int = 6, seed: int | str = 0, wide: bool = False) -> list[str]:
    """n distinct paraphrases for a clip of `content` in `style` (normalised names); `wide`
    draws on the MORE_* wordings too.

    Unknown labels still give a caption built from the label text itself, so a user's own
    labels work without editing this table.
    """
    content, style = normalize_content(content), normalize_style(style)
    verbs = CONTENT_PHRASES.get(content, (content.replace("-", " "),))
    subjects = STYLE_SUBJECTS.get(style, (f"a {style.replace('-', ' ')} person",))
    adverbs = STYLE_ADVERBS.get(style, (f"in a {style.replace('-', ' ')} way",))
    if wide:
        verbs += MORE_CONTENT_PHRASES.get(content, ())
        subjects += MORE_STYLE_SUBJECTS.get(style, ())
        adverbs += MORE_STYLE_ADVERBS.get(style, ())
    rng = random.Random(f"{content}|{style}|{seed}")
    pool = []
    for t in TEMPLATES:
        for v in verbs:
            for s in subjects:
                for a in adverbs:
                    if "{neutral}" in t and style == "normal":
                        continue
                    text = t.format(subject=s, verb=v, adverb=a, neutral=rng.choice(("someone", "a person")))
                    pool.append(text[0].upper() + text[1:])
    pool = sorted(set(pool))
    rng.shuffle(pool)
    return pool[:n]


def mirror_content(content: str) -> str:
    """The content label of the left/right mirror of a clip ("wave-left-hand" <-> "wave-right-hand")."""
    for a, b in (("left", "right"), ("right", "left")):
        if a in content.split("-"):
            return "-".join(b if part == a else part for part in content.split("-"))
    return content


_SIDE = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def swap_sides(text: str) -> str:
    """`text` with left and right swapped, as its mirror would be captioned ("turns to his Left"
    -> "turns to his Right"; case kept)."""
    def other(m: re.Match) -> str:
        word = {"left": "right", "right": "left"}[m.group(0).lower()]
        return word.capitalize() if m.group(0)[0].isupper() else word
    return _SIDE.sub(other, text)


def mirror_labels(content: str, style: str, captions: list[str], name: str) -> tuple[str, list[str]]:
    """The content label and captions of a clip's left/right mirror: a sided label's own
    paraphrases, or the clip's captions with left and right swapped (as HumanML3D captions its
    mirrors)."""
    mirrored = mirror_content(content)
    relabel = bool(captions) and mirrored != content and content != "unlabelled"
    return mirrored, captions_for(mirrored, style, seed=name) if relabel else [swap_sides(t) for t in captions]


def _words(text: str) -> set[str]:
    return {w.strip(".,!?;:").lower() for w in text.replace("-", " ").split()} - {"a", "the", "with", "to", "and", "in"}


def content_from_text(text: str, contents: list[str] | None = None) -> str | None:
    """The content label whose phrasings share the most words with `text` (None if none does).

    A transparent reading of a caption back into a label, used to score captioning."""
    words = _words(text)
    best, best_score = None, 0.0
    for content in contents or list(CONTENT_PHRASES):
        phrases = CONTENT_PHRASES.get(content, (content.replace("-", " "),))
        score = max(len(words & _words(p)) / len(_words(p)) for p in phrases)
        if score > best_score:
            best, best_score = content, score
    return best


def widen(captions: list[str], content: str, style: str, name: str, n: int) -> list[str]:
    """A labelled clip's template captions plus n paraphrases in the wider wordings; a user's
    own captions are kept as they are."""
    if not n or content == "unlabelled" or captions != captions_for(content, style, seed=name):
        return captions
    more = captions_for(content, style, n=n, seed=f"{name}|wide", wide=True)
    return captions + [t for t in more if t not in captions]


def clip_texts(clip, mirror: bool, wide_captions: int = 0) -> list[tuple[bool, str, list[str]]]:
    """What a clip teaches as text: (mirrored, content, captions) for the clip as recorded and,
    with `mirror`, for its left/right mirror (relabelled, its sides swapped)."""
    out = [(False, clip.content, widen(clip.captions, clip.content, clip.style, clip.name, wide_captions))]
    if mirror:
        content, texts = mirror_labels(clip.content, clip.style, clip.captions, clip.name)
        out.append((True, content, widen(texts, content, clip.style, clip.name, wide_captions)))
    return out


# How a chained caption joins its actions, in order (the second action loses its subject).
CHAIN_WORDS = (", then ", " and then ", ", and after that ", ", after that ")


def chained_caption(parts: list[tuple[str, str]], rng: random.Random) -> str:
    """One caption for actions done one after another: parts [(content, style), ...] in order,
    the subject and adverb from the first part's style, each action's wording from the wider
    tables, joined by CHAIN_WORDS ("A tired person walks forward, then waves the right hand.")."""
    if not parts:
        raise ValueError("a chained caption needs at least one action")
    style = normalize_style(parts[0][1])
    subject = rng.choice(STYLE_SUBJECTS.get(style, (f"a {style.replace('-', ' ')} person",))
                         + MORE_STYLE_SUBJECTS.get(style, ()))

    def verb(content: str) -> str:
        content = normalize_content(content)
        return rng.choice(CONTENT_PHRASES.get(content, (content.replace("-", " "),)) + MORE_CONTENT_PHRASES.get(content, ()))

    text = f"{subject} {verb(parts[0][0])}"
    if rng.random() < 0.5:
        text += " " + rng.choice(STYLE_ADVERBS.get(style, ("",)) + MORE_STYLE_ADVERBS.get(style, ()))
    for content, _ in parts[1:]:
        text += rng.choice(CHAIN_WORDS) + verb(content)
    text = text.strip() + "."
    return text[0].upper() + text[1:]
