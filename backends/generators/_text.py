"""Plausible text for the local generator: a reply assembled from the prompt's key words and a
small bank of templates, shaped by the system prompt and the temperature."""

from __future__ import annotations

import random

from ._prompt import keywords, words

_OPENERS = (
    "Here is a short take on {topic}.",
    "Let's look at {topic} from a few angles.",
    "{Topic} is a richer subject than it first appears.",
    "In short, {topic} comes down to a handful of ideas.",
)
_ANSWERS = (
    "The short answer is that it depends on {k1} and, to a lesser degree, on {k2}.",
    "Good question: {topic} is mostly about how {k1} relates to {k2}.",
    "It usually comes down to {k1}; {k2} and {k3} explain most of the rest.",
)
_BODY = (
    "At its heart, {k1} is about a balance between {k2} and {k3}.",
    "A good starting point is to consider how {k1} shapes {k2}.",
    "Many people overlook the role of {k2}, yet it often matters most.",
    "When {k1} and {k3} meet, the result is usually more interesting than either alone.",
    "Think of {k2} as the thread that ties the whole picture together.",
    "The details of {k3} reward a closer look.",
    "It helps to picture {topic} in concrete terms: how it looks, sounds and feels.",
    "A practical next step is to sketch a simple plan around {k1}.",
    "Small choices about {k2} tend to compound over time.",
    "Seen from a distance, {k1} and {k2} follow the same pattern.",
)
_CLOSERS = (
    "In the end, {topic} is well worth exploring further.",
    "That is the essence of {topic}.",
    "I hope this gives you a useful place to start.",
)
_VERSE = (
    "{K1} in the quiet light,",
    "{k2} drifting out of sight;",
    "where {k3} and silence hum,",
    "{k1} waits for what's to come.",
    "and {k2} turns the evening bright.",
)
_FALLBACK = ("ideas", "detail", "context")
_INSTRUCTIONS = frozenset(
    "please write tell me us about explain describe give summarize summarise list a an the some".split()
)
_BRIEF = frozenset({"concise", "brief", "short", "terse", "sentence"})
_LONG = frozenset({"detailed", "thorough", "long", "explain", "essay"})
_VERSE_WORDS = frozenset({"poem", "haiku", "verse", "rhyme", "poetry"})
_LIST_WORDS = frozenset({"list", "bullet", "bullets", "ideas", "tips", "steps"})
_STYLE_WORDS = _BRIEF | _LONG | _VERSE_WORDS | _LIST_WORDS
_QUESTION_WORDS = frozenset(
    {"what", "why", "how", "when", "where", "who", "which", "is", "are", "can", "should"}
)


def compose(
    prompt: str, system_prompt: str | None, temperature: float, max_tokens: int, rng: random.Random
) -> str:
    """A reply to `prompt`, at most `max_tokens` whitespace-separated words long."""
    keys = [k for k in keywords(prompt, limit=12) if k not in _INSTRUCTIONS and k not in _STYLE_WORDS][:6]
    slots = (keys + [w for w in _FALLBACK if w not in keys])[:3]
    topic = _topic(prompt, keys)
    fill = {"topic": topic, "Topic": topic[:1].upper() + topic[1:], "k1": slots[0], "k2": slots[1]}
    fill |= {"k3": slots[2], "K1": slots[0].capitalize()}
    style = set(words(system_prompt)) | set(words(prompt))

    # Temperature widens the choice of templates and the length, like sampling would.
    body_count = 2 + round(rng.random() * min(temperature, 2.0) * 2)
    if style & _BRIEF:
        body_count = 1
    elif style & _LONG:
        body_count += 3
    pick_from = max(1, round(len(_BODY) * min(1.0, 0.3 + temperature / 2)))
    body = [t.format(**fill) for t in rng.sample(_BODY[:pick_from], min(body_count, pick_from))]

    if style & _VERSE_WORDS:
        text = "\n".join(line.format(**fill) for line in _VERSE[: 3 if "haiku" in style else 4])
    elif style & _LIST_WORDS:
        text = "\n".join(f"- {sentence}" for sentence in body)
    else:
        question = prompt.rstrip().endswith("?") or (words(prompt)[:1] or [""])[0] in _QUESTION_WORDS
        opener = rng.choice(_ANSWERS if question else _OPENERS).format(**fill)
        closer = rng.choice(_CLOSERS).format(**fill) if body_count > 1 else ""
        text = " ".join(part for part in (opener, *body, closer) if part)
    return truncate_words(text, max_tokens)


def _topic(prompt: str, keys: list[str]) -> str:
    """A short phrase for what the prompt is about: the prompt itself if short, else its key words."""
    phrase = words(prompt)
    while phrase and (phrase[0] in _INSTRUCTIONS or phrase[0] in _QUESTION_WORDS):
        phrase = phrase[1:]
    if 0 < len(phrase) <= 8:
        return " ".join(phrase)
    if len(keys) >= 3:
        return f"{keys[0]}, {keys[1]} and {keys[2]}"
    return " and ".join(keys) or "your request"


def truncate_words(text: str, limit: int) -> str:
    """`text` cut to at most `limit` words, keeping its line breaks."""
    kept: list[str] = []
    remaining = max(0, limit)
    for line in text.split("\n"):
        if remaining == 0:
            break
        line_words = line.split()
        kept.append(" ".join(line_words[:remaining]))
        remaining -= min(remaining, len(line_words))
    return "\n".join(kept)
