"""Fast unit tests of the checks (graders/checks.py) and of intake (rai_lab/grading/instructor/intake.py), beside the
end-to-end class of tests/grading/test_grading.py: no kernel, no Spark, no nbgrader run (`make test-quick`)."""

from __future__ import annotations

import json
import zipfile

import nbformat
import pytest

from conftest import LAB, LOADED, NEUTRAL, SYSTEM_PROMPT
from rai_lab import evidence
from rai_lab.grading.instructor import intake

checks = evidence.load_checks()
ANSWERS = [f"answer {i}" for i in range(10)]


def call(prompt: str, answer: str, system: str = SYSTEM_PROMPT, max_tokens: int = 100, model: str = "gpt-35-turbo"):
    """A call as the replay service logs it."""
    return {"kind": "call", "status": 200, "deployment": model, "answer": answer, "answers": [answer],
            "request": {"model": model, "max_tokens": max_tokens,
                        "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}]}}


def context(calls, lang="en"):
    return {"lang": lang, "deployment": "gpt-35-turbo", "calls": calls}


def snapshot(env=None, **values):
    ev = {"env": env if env is not None else {"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com/",
                                              "AZURE_OPENAI_API_VERSION": "2023-03-15-preview"}, "vars": {}}
    for name, value in values.items():
        ev["vars"][name] = value if isinstance(value, dict) and "kind" in value else {"kind": "value", "value": value}
    return ev


def frame(column, rows):
    return {"kind": "spark_df", "columns": [[column, "string"]], "rows": [[row] for row in rows]}


LAB_CALLS = [call(p, a) for p, a in zip(NEUTRAL + LOADED, ANSWERS)]


def verdict(name, ev, ctx):
    try:
        checks.run(name, ev, ctx)
    except checks.CheckFailed as failed:
        return str(failed)
    return "passed"


def test_the_exercise_done_right_passes_every_check():
    ev = snapshot(neutral_answers=ANSWERS[:5], loaded_answers=ANSWERS[5:], neutral_df=frame("neutral_answer", ANSWERS[:5]),
                  loaded_df=frame("loaded_answer", ANSWERS[5:]))
    for name in ("env_key_set", "env_endpoint_https", "env_api_version", "calls_ten_made", "calls_prompts_in_order",
                 "calls_system_prompt", "calls_deployment_max_tokens", "answers_lists", "neutral_df_built", "loaded_df_built"):
        assert verdict(name, ev, context(LAB_CALLS)) == "passed", name


@pytest.mark.parametrize(("name", "env", "message"), [
    ("env_key_set", {}, "The environment variable AZURE_OPENAI_API_KEY is not set"),
    ("env_key_set", {"AZURE_OPENAI_API_KEY": "your_openai_api_key"}, "still holds the example value 'your_openai_api_key'"),
    ("env_endpoint_https", {"AZURE_OPENAI_ENDPOINT": "http://r.openai.azure.com/"}, "must be an https URL"),
    ("env_api_version", {"AZURE_OPENAI_API_VERSION": "latest"}, "must look like YYYY-MM-DD"),
])
def test_environment_checks_say_what_is_wrong(name, env, message):
    assert message in verdict(name, snapshot(env=env), context([]))


def test_a_key_read_while_graded_is_a_stand_in_secret_that_scores(monkeypatch):
    """Graded, getpass (no keyboard) and dbutils.secrets.get (no Databricks) answer a stand-in secret, which the key
    check takes as set; a learner's own dbutils is left alone."""
    import getpass

    from rai_lab import kit

    monkeypatch.setattr(getpass, "getpass", getpass.getpass)  # put back after the test
    namespace: dict = {}

    class Kernel:  # ipykernel puts its own getpass in place before each cell: Kernel.getpass then
        def getpass(self, prompt="", stream=None):
            raise RuntimeError("getpass was called, but this frontend does not support input requests.")

    kernel = Kernel()
    kit.graded_stand_ins(namespace, kernel)
    assert getpass.getpass("Clé : ") == kit.GRADED_SECRET and kernel.getpass("Clé : ") == kit.GRADED_SECRET
    assert namespace["dbutils"].secrets.get(scope="azure-openai", key="api-key") == kit.GRADED_SECRET
    assert namespace["dbutils"].library.restartPython() is None
    assert verdict("env_key_set", snapshot(env={"AZURE_OPENAI_API_KEY": kit.GRADED_SECRET}), context([])) == "passed"
    mine = {"dbutils": "the learner's own"}
    kit.graded_stand_ins(mine)
    assert mine["dbutils"] == "the learner's own"


@pytest.mark.parametrize(("name", "calls", "message"), [
    ("calls_ten_made", LAB_CALLS[:9], "found: 9 successful call(s)"),
    ("calls_prompts_in_order", LAB_CALLS[5:] + LAB_CALLS[:5], "Expected: the prompts of neutral_input then loaded_input"),
    ("calls_system_prompt", [call(p, a, system="Be nice.") for p, a in zip(NEUTRAL + LOADED, ANSWERS)], "10 call(s) without it"),
    ("calls_deployment_max_tokens", [call(p, a, max_tokens=50) for p, a in zip(NEUTRAL + LOADED, ANSWERS)], "max_tokens=100"),
])
def test_call_checks_read_the_calls_and_say_what_was_found(name, calls, message):
    assert message in verdict(name, snapshot(), context(calls))


def test_dataframe_and_answer_checks_compare_with_what_was_received():
    wrong_column = snapshot(neutral_answers=ANSWERS[:5], neutral_df=frame("answer", ANSWERS[:5]))
    assert "one string column 'neutral_answer'" in verdict("neutral_df_built", wrong_column, context(LAB_CALLS))
    pandas = snapshot(loaded_answers=ANSWERS[5:], loaded_df={"kind": "object", "type": "pandas.DataFrame"})
    assert "must be a Spark DataFrame" in verdict("loaded_df_built", pandas, context(LAB_CALLS))
    upper = snapshot(neutral_answers=[a.upper() for a in ANSWERS[:5]], loaded_answers=ANSWERS[5:])
    assert "neutral_answers differs from the answers received" in verdict("answers_lists", upper, context(LAB_CALLS))
    # In French too, from the same catalogue.
    assert "n'est pas défini" in verdict("answers_lists", snapshot(), context(LAB_CALLS, lang="fr"))


def test_dataframes_hold_the_answers_served_not_the_learners_own_lists():
    """Does a DataFrame filled from lists typed by hand, with no call behind them, score nothing?"""
    typed = snapshot(neutral_answers=ANSWERS[:5], neutral_df=frame("neutral_answer", ANSWERS[:5]))
    message = verdict("neutral_df_built", typed, context([]))
    assert "no successful call was recorded" in message and "typed by hand do not count" in message
    assert "tapées à la main" in verdict("neutral_df_built", typed, context([], lang="fr"))
    # Rows that match the learner's list but not what the service gave them fail too.
    other = snapshot(loaded_answers=["made up"] * 5, loaded_df=frame("loaded_answer", ["made up"] * 5))
    assert "must hold the 5 answers of loaded_answers" in verdict("loaded_df_built", other, context(LAB_CALLS))
    # The answers served are what counts, whatever the learner's list says.
    served = snapshot(neutral_answers=["whatever"], neutral_df=frame("neutral_answer", ANSWERS[:5]))
    assert verdict("neutral_df_built", served, context(LAB_CALLS)) == "passed"


def test_a_dataframe_over_a_rerun_limit_fails_with_the_limit_named():
    over = {"kind": "spark_df", "limit": "this DataFrame has more than 1000 rows, the most the grader reads"}
    assert "more than 1000 rows" in verdict("neutral_df_built", snapshot(neutral_df=over), context(LAB_CALLS))
    assert "more than 1000 rows" in verdict("loaded_df_built", snapshot(loaded_df=over), context(LAB_CALLS))


def test_intake_takes_good_notebooks_and_refuses_bad_ones_with_a_reason(tmp_path):
    folder, staging = tmp_path / "class", tmp_path / "staging"
    folder.mkdir()
    released = nbformat.read(LAB / "responsible-ai-en" / "responsible_ai.ipynb", 4)
    (folder / "Élodie Dupont.ipynb").write_text(nbformat.writes(released), encoding="utf-8")
    (folder / "broken.ipynb").write_text("{not json", encoding="utf-8")
    pasted = nbformat.read(LAB / "responsible-ai-en" / "responsible_ai.ipynb", 4)
    key = "0123456789abcdef0123456789abcdef"
    pasted.cells[-1].source = f'os.environ["AZURE_OPENAI_API_KEY"] = "{key}"'
    (folder / "pasted.ipynb").write_text(nbformat.writes(pasted), encoding="utf-8")
    with zipfile.ZipFile(folder / "sneaky.zip", "w") as archive:
        archive.writestr("../../escape.ipynb", json.dumps(nbformat.writes(released)))
    found = {sub.learner: sub for sub in intake.collect(folder, staging, "en")}
    assert set(found) == {"Élodie_Dupont", "broken", "pasted", "sneaky"}
    assert found["Élodie_Dupont"].problem is None and found["Élodie_Dupont"].notebook.exists()
    assert "not a readable notebook" in found["broken"].problem
    assert "unreadable or unsafe" in found["sneaky"].problem and not (tmp_path / "escape.ipynb").exists()
    assert found["pasted"].secrets == [key] and any("regenerate it" in note for note in found["pasted"].notes)
    assert found["Élodie_Dupont"].digest and found["Élodie_Dupont"].digest != found["pasted"].digest
