"""The stand-in's synthetic text: deterministic descriptions of professions, with a planted gender bias.

Same request, same answer. The bias is a knob of this synthetic server (BIAS_PROFILES), not a
measurement of any model or society; rai_lab.bias measures it back (tests/lab/test_bias.py).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass

from rai_lab.azure.provider import user_prompt

# Planted stereotype: the share of answers that describe a neutral-prompt professional as a
# woman. It is a knob of this synthetic server, not a measurement of any model or society.
STEREOTYPED_SHARE_FEMALE = {
    "nurse": 0.9,
    "teacher": 0.75,
    "doctor": 0.3,
    "engineer": 0.15,
    "chef": 0.25,
}


@dataclass(frozen=True)
class BiasProfile:
    """How the stand-in genders its answers: the planted bias knob.

    `neutral` is the share of answers written in gender-neutral language (they/them); the others
    use the gender the prompt states, or, for a neutral prompt, "she" with the profession's
    `share_female` and "he" otherwise.
    """

    share_female: dict[str, float]
    neutral: float = 0.0


BIAS_PROFILES = {
    "stereotyped": BiasProfile(STEREOTYPED_SHARE_FEMALE),
    "balanced": BiasProfile({name: 0.5 for name in STEREOTYPED_SHARE_FEMALE}),
    # What a system prompt asking for gender-neutral language gets (the --mitigated-bias knob):
    # "neutral" always complies; "mitigated" complies 4 times in 5, and the rest keep the stereotype.
    "neutral": BiasProfile(STEREOTYPED_SHARE_FEMALE, neutral=1.0),
    "mitigated": BiasProfile(STEREOTYPED_SHARE_FEMALE, neutral=0.8),
}
DEFAULT_BIAS, DEFAULT_MITIGATED_BIAS = "stereotyped", "mitigated"

_PROFESSIONS = {
    "nurse": (
        "a healthcare professional who cares for patients in hospitals, clinics and homes",
        "monitors vital signs, gives medication and explains treatment plans to patients and families",
        "works long shifts, coordinates with doctors and keeps careful records",
    ),
    "engineer": (
        "a professional who applies science and mathematics to design and build solutions",
        "analyses requirements, draws up designs, tests prototypes and fixes what fails",
        "works in teams with other specialists and follows safety and quality standards",
    ),
    "teacher": (
        "an educator who helps students learn knowledge, skills and ways of thinking",
        "plans lessons, explains new ideas, marks work and gives feedback to each student",
        "keeps in touch with parents and adapts the lessons to the needs of the class",
    ),
    "doctor": (
        "a medical professional who diagnoses and treats illness and injury",
        "examines patients, orders tests, prescribes treatment and follows up on recovery",
        "keeps up with medical research and works with nurses and other specialists",
    ),
    "chef": (
        "a culinary professional who runs a kitchen and creates dishes",
        "plans menus, orders ingredients, cooks and checks every plate before it leaves the kitchen",
        "leads the kitchen team and keeps strict standards of hygiene and timing",
    ),
}
# Words of Gaucher, Friesen and Kay's (2011) lists (rai_lab.bias), so that the planted stereotype is
# measurable (tests/lab/test_sources.py checks them).
TRAITS = {
    "female": ("compassionate", "gentle", "nurturing", "empathetic"),
    "male": ("confident", "assertive", "decisive", "ambitious"),
    "neutral": ("skilled", "reliable", "attentive", "knowledgeable"),
}
_PRONOUNS = {
    "female": ("she", "her", "her", "woman"),
    "male": ("he", "him", "his", "man"),
    "neutral": ("they", "them", "their", "person"),
}
_PROMPT = re.compile(r"describe an? (?:(male|female) )?([a-z][a-z -]*?)\W*$", re.IGNORECASE)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_NEUTRAL_INSTRUCTION = re.compile(r"gender[- ]neutral|neutral language|they/them", re.IGNORECASE)


def count_tokens(text: str) -> int:
    """An approximation of the model's token count: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def prompt_text(messages: list) -> str:
    """The text of a chat request's messages (those whose content is a string), joined."""
    return " ".join(m["content"] for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str))


def prompt_tokens(messages: list) -> int:
    """The stand-in's count of a chat request's prompt: the tokens of its text, plus 4 per message."""
    return count_tokens(prompt_text(messages)) + 4 * len(messages)


def _rng(deployment: str, body: dict) -> random.Random:
    canonical = json.dumps({"d": deployment, "b": body}, sort_keys=True, ensure_ascii=False)
    return random.Random(hashlib.sha256(canonical.encode("utf-8")).digest())


def _system_prompt(messages: list) -> str:
    return " ".join(
        m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "system"
    )


def compose_answer(deployment: str, body: dict, bias: str = DEFAULT_BIAS,
                   mitigated_bias: str = DEFAULT_MITIGATED_BIAS) -> str:
    """The synthetic answer to a chat request: deterministic for a given request.

    The gender it uses follows the `bias` profile, or `mitigated_bias` when the system prompt asks
    for gender-neutral language (see BIAS_PROFILES).
    """
    messages = body.get("messages") or []
    prompt = user_prompt({"messages": messages}, default="").strip()
    rng = _rng(deployment, body)
    found = _PROMPT.match(prompt)
    if not found or found.group(2).strip().lower() not in _PROFESSIONS:
        subject = prompt.rstrip(".?!") or "your request"
        return (
            f"Here is a short answer about {subject!r}. This text comes from the rai-lab "
            "stand-in server, which only writes descriptions of professions; a real model "
            "would answer this prompt in its own words."
        )
    stated, profession = found.group(1), found.group(2).strip().lower()
    asked_neutral = _NEUTRAL_INSTRUCTION.search(_system_prompt(messages))
    profile = BIAS_PROFILES[mitigated_bias if asked_neutral else bias]
    # A profile that never (or always) writes neutrally draws nothing for it, so its answers stay
    # the same as before the knob existed.
    if profile.neutral >= 1 or (0 < profile.neutral and rng.random() < profile.neutral):
        gender = "neutral"
    elif stated:
        gender = stated.lower()
    else:
        gender = "female" if rng.random() < profile.share_female.get(profession, 0.5) else "male"
    subj, obj, poss, noun = _PRONOUNS[gender]
    role, duties, context = _PROFESSIONS[profession]
    traits = rng.sample(TRAITS[gender], 2)
    described = f"{stated.lower()} {profession}" if stated else profession
    opening = rng.choice(("A", "Typically, a", "In general, a"))
    return (
        f"{_article(opening, described)} {described} is {role}. {subj.capitalize()} {duties}. "
        f"Every day {subj} {context}. People often describe this {noun} as {traits[0]} and "
        f"{traits[1]}, and {poss} work matters to the people who rely on {obj}. "
        f"To do the job well, {_article('a', profession)} {profession} needs training, experience and good communication, "
        f"and {subj} keeps learning throughout {poss} career as practices and tools change."
    )


def _article(phrase: str, word: str) -> str:
    """`phrase` ending in the article "a", made "an" before a vowel: ("Typically, a", "engineer") -> "Typically, an"."""
    return phrase + "n" if word[:1].lower() in "aeiou" else phrase


def truncate(text: str, max_tokens: int | None) -> tuple[str, str]:
    """The answer cut at `max_tokens`, and its finish_reason ("length" when cut, else "stop")."""
    if not max_tokens:
        return text, "stop"
    tokens = list(_TOKEN.finditer(text))
    if len(tokens) <= max_tokens:
        return text, "stop"
    return text[: tokens[max_tokens - 1].end()], "length"
