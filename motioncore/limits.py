"""The limits of a request, in one place: the backend's engine and HTTP schemas and the add-on's
panel fields all read them here."""

MAX_SECONDS = 20.0   # the longest motion one request makes or reads
MAX_FPS = 120.0      # the highest frame rate a motion may have on the wire
MAX_FRAMES = int(MAX_SECONDS * MAX_FPS)
MAX_TEXT = 1000      # characters of prompt; the model reads at most its max_text_tokens of them
MAX_VARIATIONS = 16  # takes from one Generate
