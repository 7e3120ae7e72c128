"""The checks behind the check cells: what the exercise asks for, read from what the kernel did.

Each check takes a snapshot of the notebook (`rai_lab.evidence`: the Azure variables and, as plain
data, the variables named in NEEDS) and a context (language, deployment, calls), and raises
CheckFailed with a message for the learner (what was expected, what was found) in their language.
While grading, this runs in the grader's process, never in the learner's kernel, and the calls are
those the grader's replay service served to that learner (`rai_lab.grading.worker.replay`), not the kernel's log.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from rai_lab.azure.provider import user_prompt
from rai_lab.exercise import LOADED, MIRRORED, NEUTRAL, SYSTEM_PROMPT  # noqa: F401 - the checks' data
from rai_lab.messages import say

SAMPLED_PROMPTS = NEUTRAL + LOADED + MIRRORED
PLACEHOLDERS = {"your_openai_api_key", "your_openai_endpoint", ""}
API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")

# Checks that read only the calls the learner made (the grader's replay log): no snapshot of the kernel.
CALLS_ONLY = {"calls_ten_made", "calls_prompts_in_order", "calls_system_prompt", "calls_deployment_max_tokens",
              "bonus_samples_baseline", "bonus_mitigation_run"}
# The variables each other check reads; the Azure environment variables are always in the snapshot.
NEEDS = {
    "answers_lists": ("neutral_answers", "loaded_answers"),
    "neutral_df_built": ("neutral_df",),
    "loaded_df_built": ("loaded_df",),
    "bonus_samples_df": ("samples_df",),
    "bonus_representation": ("representation_df",),
}


class CheckFailed(AssertionError):
    """A check that did not pass; its message is for the learner."""


def _t(key: str, lang: str, **values) -> str:
    """A check's text in the learner's language (rai_lab/i18n: the "check" section)."""
    return say(f"check.{key}", lang, **values)


def _fail(key: str, lang: str, **values) -> None:
    raise CheckFailed(_t(key, lang, **values))


def run(name: str, ev: dict, ctx: dict) -> None:
    """Run check `name` on a snapshot; CheckFailed (a message for the learner) when it does not pass."""
    if name not in CHECKS:
        raise KeyError(f"no check named {name!r}")
    CHECKS[name](ev, ctx)


def _env(ev: dict, name: str, lang: str) -> str:
    value = (ev.get("env") or {}).get(name)
    if not isinstance(value, str):
        _fail("missing", lang, name=name)
    return value


def _var(ev: dict, name: str) -> dict:
    found = (ev.get("vars") or {}).get(name)
    return found if isinstance(found, dict) else {"kind": "undefined"}


class _Opaque:
    """A value the snapshot could not carry as plain data: equal to nothing."""

    def __eq__(self, other) -> bool:
        return False

    __hash__ = None


def _value(ev: dict, name: str):
    found = _var(ev, name)
    return found.get("value") if found.get("kind") == "value" else _Opaque()


def _kind(found: dict) -> str:
    """What a learner's variable is, for a message."""
    if found.get("kind") == "undefined" or (found.get("kind") == "value" and found.get("value") is None):
        return "None"
    return str(found.get("type", "?"))


def env_key_set(ev: dict, ctx: dict) -> None:
    value = _env(ev, "AZURE_OPENAI_API_KEY", ctx["lang"])
    if value.strip() in PLACEHOLDERS:
        _fail("placeholder", ctx["lang"], name="AZURE_OPENAI_API_KEY", value=value)


def env_endpoint_https(ev: dict, ctx: dict) -> None:
    value = _env(ev, "AZURE_OPENAI_ENDPOINT", ctx["lang"])
    if value.strip() in PLACEHOLDERS:
        _fail("placeholder", ctx["lang"], name="AZURE_OPENAI_ENDPOINT", value=value)
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname:
        _fail("not_https", ctx["lang"], value=value)


def env_api_version(ev: dict, ctx: dict) -> None:
    value = _env(ev, "AZURE_OPENAI_API_VERSION", ctx["lang"])
    if not API_VERSION.fullmatch(value.strip()):
        _fail("bad_version", ctx["lang"], value=value)


def _chat_calls(ctx: dict) -> list[dict]:
    return [call for call in ctx["calls"] if call.get("status") == 200 and isinstance(call.get("request"), dict)]


def _user_prompt(call: dict) -> str | None:
    return user_prompt(call["request"], default=None)


def calls_ten_made(ev: dict, ctx: dict) -> None:
    count = len(_chat_calls(ctx))
    if count != 10:
        _fail("call_count", ctx["lang"], count=count)


def _need_calls(ctx: dict) -> list[dict]:
    calls = _chat_calls(ctx)
    if not calls:
        _fail("no_calls", ctx["lang"])
    return calls


def calls_prompts_in_order(ev: dict, ctx: dict) -> None:
    prompts = [_user_prompt(call) for call in _need_calls(ctx)]
    if prompts != NEUTRAL + LOADED:
        _fail("prompts", ctx["lang"], found=prompts)


def _systems(call: dict) -> list:
    """The contents of a call's system messages."""
    return [m.get("content") for m in call["request"].get("messages") or [] if isinstance(m, dict) and m.get("role") == "system"]


def calls_system_prompt(ev: dict, ctx: dict) -> None:
    bad = 0
    for call in _need_calls(ctx):
        bad += _systems(call) != [SYSTEM_PROMPT]
    if bad:
        _fail("system", ctx["lang"], bad=bad)


def calls_deployment_max_tokens(ev: dict, ctx: dict) -> None:
    deployment = ctx["deployment"]
    found = sorted({(c["deployment"], c["request"].get("model"), c["request"].get("max_tokens")) for c in _need_calls(ctx)}, key=str)
    if found != [(deployment, deployment, 100)]:
        shown = [f"model={model!r}, max_tokens={tokens}" for _, model, tokens in found]
        _fail("deployment", ctx["lang"], deployment=deployment, found="; ".join(shown))


def answers_lists(ev: dict, ctx: dict) -> None:
    """Each list holds the answers received for its prompts, in the order they came back."""
    calls = _chat_calls(ctx)
    lang = ctx["lang"]
    for name, prompts in (("neutral_answers", NEUTRAL), ("loaded_answers", LOADED)):
        mine = [call for call in calls if _user_prompt(call) in prompts]
        expected = [call.get("answer") for call in mine]
        if _var(ev, name)["kind"] == "undefined":
            _fail("answers", lang, name=name, problem=_t("undefined", lang, name=name))
        if not expected or _value(ev, name) != expected:
            withheld = [repr(_user_prompt(call)) for call in mine if call.get("filtered")]
            note = _t("filtered", lang, prompts=", ".join(withheld)) if withheld else ""
            _fail("answers", lang, name=name, problem=_t("differs", lang, name=name) + note)


def _dataframe(ev: dict, ctx: dict, name: str, column: str, source: str, prompts: list[str]) -> None:
    """The DataFrame holds the answers the service gave this learner for `prompts`, in order: never the word of
    the learner's own list (a list typed by hand, with no call behind it, scores nothing here)."""
    lang = ctx["lang"]
    value = _var(ev, name)
    if value.get("kind") != "spark_df":
        _fail("not_df", lang, name=name, kind=_kind(value))
    if value.get("limit"):  # the grader's re-run of its plan went over a limit (rows, time): the reason says which
        _fail("rerun_limit", lang, name=name, problem=value["limit"])
    found = [tuple(item) for item in value.get("columns") or []]
    if found != [(column, "string")]:
        _fail("columns", lang, name=name, column=column, found=found)
    rows = [row[0] if row else None for row in value.get("rows") or []]
    expected = [call.get("answer") for call in _chat_calls(ctx) if _user_prompt(call) in prompts]
    if not expected:
        _fail("rows_no_calls", lang, name=name, found=len(rows))
    if "error" in value or rows != expected:
        detail = _t("rows_differ", lang) if len(rows) == len(expected) else ""
        if "error" in value:
            detail = f"({value['error']})"
        _fail("rows", lang, name=name, count=len(expected), source=source, found=len(rows), detail=detail)


def neutral_df_built(ev: dict, ctx: dict) -> None:
    _dataframe(ev, ctx, "neutral_df", "neutral_answer", "neutral_answers", NEUTRAL)


def loaded_df_built(ev: dict, ctx: dict) -> None:
    _dataframe(ev, ctx, "loaded_df", "loaded_answer", "loaded_answers", LOADED)


# -- Aller plus loin / going further (bonus) ------------------------------------------------------
def _sampled_calls(ctx: dict) -> list[dict]:
    """The going-further calls: those that ask for several answers (n > 1)."""
    return [call for call in _chat_calls(ctx) if isinstance(call["request"].get("n"), int) and call["request"]["n"] > 1]


def _run_of(call: dict) -> str:
    return "baseline" if _systems(call) == [SYSTEM_PROMPT] else "mitigated"


def _check_run(ctx: dict, run: str) -> list[dict]:
    lang, deployment = ctx["lang"], ctx["deployment"]
    calls = [call for call in _sampled_calls(ctx) if _run_of(call) == run]
    good = [_user_prompt(c) for c in calls
            if (c["request"].get("temperature") or 0) > 0 and c["request"].get("max_tokens") == 100
            and c["request"].get("model") == deployment and c["deployment"] == deployment and len(c.get("answers") or []) == c["request"]["n"]]
    if good != SAMPLED_PROMPTS or len(calls) != len(SAMPLED_PROMPTS):
        detail = "; ".join(f"{_user_prompt(c)!r} n={c['request'].get('n')} temperature={c['request'].get('temperature')} "
                           f"model={c['request'].get('model')!r} max_tokens={c['request'].get('max_tokens')}" for c in calls[:3])
        found = _t("sampled_found", lang, count=len(calls), detail=(detail + (" …" if len(calls) > 3 else "")) or "-")
        _fail("sampled", lang, what=_t(f"{run}_run", lang), count=len(SAMPLED_PROMPTS), deployment=deployment, found=found)
    return calls


def bonus_samples_baseline(ev: dict, ctx: dict) -> None:
    _check_run(ctx, "baseline")


def bonus_mitigation_run(ev: dict, ctx: dict) -> None:
    calls = _check_run(ctx, "mitigated")
    base = {(c["request"]["n"], c["request"].get("temperature")) for c in _sampled_calls(ctx) if _run_of(c) == "baseline"}
    mine = {(c["request"]["n"], c["request"].get("temperature")) for c in calls}
    if len(base) != 1 or mine != base:
        shown = ", ".join(f"n={n}, temperature={t}" for n, t in sorted(mine, key=str))
        _fail("same_settings", ctx["lang"], base=", ".join(f"n={n}, temperature={t}" for n, t in sorted(base, key=str)) or "-",
              found=shown)


def _expected_samples(ctx: dict) -> list[tuple[str, str, str]]:
    calls = _sampled_calls(ctx)
    if not calls:
        _fail("no_samples", ctx["lang"])
    return [(_run_of(call), _user_prompt(call), answer) for call in calls for answer in call.get("answers") or []]


def _frame(ev: dict, name: str, lang: str, fail) -> dict:
    """A snapshot's Spark DataFrame; `fail(problem)` when the variable is not one, or its query failed."""
    value = _var(ev, name)
    if value.get("kind") != "spark_df":
        fail(_t("undefined", lang, name=name) if value.get("kind") == "undefined" else _kind(value))
    if value.get("limit"):
        fail(_t("rerun_limit", lang, name=name, problem=value["limit"]))
    if "error" in value:
        fail(value["error"])
    return value


def bonus_samples_df(ev: dict, ctx: dict) -> None:
    lang = ctx["lang"]
    expected = _expected_samples(ctx)

    def fail(problem: str) -> None:
        _fail("samples_df", lang, count=len(expected), problem=problem)

    value = _frame(ev, "samples_df", lang, fail)
    columns = [tuple(c) for c in value.get("columns") or []]
    if columns != [("run", "string"), ("prompt", "string"), ("answer", "string")]:
        fail(f"{columns}")
    rows = sorted(tuple(r) for r in value.get("rows") or [])
    if rows != sorted(expected):
        fail(_t("rows", lang, name="samples_df", count=len(expected), source="samples_rows", found=len(rows),
                                       detail=_t("rows_differ", lang) if len(rows) == len(expected) else ""))


_PROMPT = re.compile(r"^\s*describe an?\s+(?:(male|female)\s+)?([a-z][a-z -]*?)\W*$", re.IGNORECASE)


def _representation(samples: list[tuple[str, str, str]]) -> dict[tuple[str, str], tuple]:
    """HELM's representation per (run, profession), computed here in plain Python from the answers
    received: an oracle independent of the Spark code (rai_lab.bias) the learner calls."""
    from rai_lab.bias import CLITICS, FEMALE_TERMS, MALE_TERMS

    sums: dict[tuple[str, str], list[int]] = {}
    for run, prompt, answer in samples:
        found = _PROMPT.match(prompt)
        profession = found.group(2).lower() if found else ""
        words = [re.sub(CLITICS, "", w) for w in re.split(r"[^a-z']+", answer.lower())]
        entry = sums.setdefault((run, profession), [0, 0, 0])
        entry[0] += 1
        entry[1] += sum(w in FEMALE_TERMS for w in words)
        entry[2] += sum(w in MALE_TERMS for w in words)
    table = {}
    for key, (answers, female, male) in sums.items():
        f, m = female / len(FEMALE_TERMS), male / len(MALE_TERMS)
        p_female = f / (f + m) if f + m else None
        table[key] = (answers, female, male, p_female, None if p_female is None else abs(p_female - 0.5))
    return table


def bonus_representation(ev: dict, ctx: dict) -> None:
    """representation_df: HELM's representation of the neutral prompts' answers, by run and profession."""
    lang = ctx["lang"]

    def fail(problem: str) -> None:
        _fail("representation", lang, problem=problem)

    value = _frame(ev, "representation_df", lang, fail)
    columns = [c[0] for c in value.get("columns") or []]
    samples = [row for row in _expected_samples(ctx) if row[1] in NEUTRAL]
    expected = _representation(samples)
    fields = ("run", "profession", "answers", "female", "male", "p_female", "bias")
    missing = [f for f in fields if f not in columns]
    if missing:
        fail(f"KeyError: {missing[0]}")
    at = [columns.index(f) for f in fields]
    found = {(r[at[0]], r[at[1]]): tuple(r[i] for i in at[2:]) for r in value.get("rows") or []}
    counted = sum(_number(v[0]) for v in found.values())
    if set(found) != set(expected) or counted != len(samples):
        fail(_t("representation_rows", lang, expected=len(expected), answers=len(samples), found=len(found),
                                                     found_answers=counted))

    def close(a, b) -> bool:
        if a is None or b is None:
            return a is None and b is None
        return isinstance(b, (int, float)) and not isinstance(b, bool) and abs(a - b) < 1e-9

    wrong = sorted(key for key, values in expected.items() if not all(close(a, b) for a, b in zip(values, found[key])))
    if wrong:
        fail(_t("representation_values", lang, where=wrong[:3]))


def _number(value) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


# Every check, by the grade_id of its check cell (tests check this agrees with the rubric).
CHECKS = {
    function.__name__: function
    for function in (env_key_set, env_endpoint_https, env_api_version, calls_ten_made, calls_prompts_in_order,
                     calls_system_prompt, calls_deployment_max_tokens, answers_lists, neutral_df_built, loaded_df_built,
                     bonus_samples_baseline, bonus_mitigation_run, bonus_samples_df, bonus_representation)
}
