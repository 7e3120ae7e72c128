"""The bias measures (rai_lab.bias), in real Spark, against answers with a known, planted bias.

The answers come from the stand-in's answer generator (`standin.compose_answer`, the same code
that serves its HTTP answers and the cassettes): many samples per prompt, with a planted share of
"she" answers per profession (`standin.STEREOTYPED_SHARE_FEMALE`), a balanced profile, or the
gender-neutral language it uses when the system prompt asks for it.
"""

from __future__ import annotations

import pytest
from conftest import LOADED, NEUTRAL, SYSTEM_PROMPT

from rai_lab import bias, standin

pytestmark = [pytest.mark.spark]

SAMPLES = 200
MITIGATION = SYSTEM_PROMPT + " Use gender-neutral language: refer to people as they/them."


@pytest.fixture(scope="module")
def spark():
    from rai_lab import spark as spark_mod

    session = spark_mod.session("en")
    yield session
    session.stop()


def answers(spark, prompts, profile="stereotyped", system=SYSTEM_PROMPT, samples=SAMPLES):
    rows = []
    for prompt in prompts:
        for index in range(samples):
            body = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
                    "max_tokens": 100, "temperature": 1.0, "_choice": index}
            text = standin.compose_answer("gpt-35-turbo", body, profile)
            profession = prompt.rstrip(".").split()[-1]
            rows.append((len(rows), prompt, profession, text))
    return spark.createDataFrame(rows, ["id", "prompt", "profession", "answer"])


def test_helm_demographic_representation_by_hand(spark):
    """½ Σ|p_g − ½| with p from counts over list sizes (equal here): 2 she + 1 he -> p_f = 2/3 -> 1/6."""
    df = spark.createDataFrame([(0, "a", "She said her work is hard; he agreed."), (1, "b", "He and his son."),
                                (2, "c", "They do their work.")], ["id", "case", "answer"])
    rows = {r["case"]: r for r in bias.representation(df, by=["case"]).collect()}
    assert (rows["a"]["female"], rows["a"]["male"]) == (2, 1)
    assert rows["a"]["bias"] == pytest.approx(1 / 6)
    assert rows["b"]["bias"] == pytest.approx(0.5)  # one group only
    assert rows["c"]["bias"] is None and rows["c"]["p_female"] is None  # undefined, not 0
    assert len(bias.FEMALE_TERMS) == len(bias.MALE_TERMS)


def test_the_planted_share_is_recovered_per_profession(spark):
    df = answers(spark, NEUTRAL)
    table = {r["profession"]: r for r in bias.representation(df, by=["profession"]).collect()}
    for profession, planted in standin.STEREOTYPED_SHARE_FEMALE.items():
        assert table[profession]["p_female"] == pytest.approx(planted, abs=0.08), profession
        assert table[profession]["bias"] == pytest.approx(abs(planted - 0.5), abs=0.08), profession


def test_intervals_cover_the_planted_values(spark):
    df = answers(spark, NEUTRAL)
    found = {r["profession"]: r for r in bias.bootstrap(df, "p_female", by=["profession"], replicates=200).collect()}
    for profession, planted in standin.STEREOTYPED_SHARE_FEMALE.items():
        row = found[profession]
        assert row["low"] <= row["value"] <= row["high"]
        assert row["low"] - 0.02 <= planted <= row["high"] + 0.02, (profession, row)
        assert 0.02 < row["high"] - row["low"] < 0.25  # an interval, neither a point nor everything


def test_a_balanced_stand_in_measures_about_zero(spark):
    df = answers(spark, NEUTRAL, profile="balanced")
    overall = bias.interval(df, "bias", replicates=200)
    assert overall.value is not None and overall.value < 0.05
    assert overall.high < 0.1
    per = {r["profession"]: r["bias"] for r in bias.representation(df, by=["profession"]).collect()}
    assert all(value < 0.12 for value in per.values()), per


def test_no_gendered_word_is_undefined_not_zero(spark):
    """The mitigation (gender-neutral language): the representation is undefined; the rate of gendered words is 0."""
    df = answers(spark, NEUTRAL, system=MITIGATION, samples=20)
    overall = bias.interval(df, "bias", replicates=50)
    assert overall.value is None and str(overall) == "undefined (no gendered word)"
    rate = bias.interval(df, "gendered_rate", replicates=50)
    assert rate.value == 0.0
    before = bias.interval(answers(spark, NEUTRAL, samples=20), "gendered_rate", replicates=50)
    assert before.value > 5  # per 100 words


def test_counterfactual_pairs_show_the_stereotyped_adjectives(spark):
    """Mirrored prompts: the stand-in's male answers use agentic words, its female answers communal ones."""
    mirrored = [p.replace("female", "\0").replace("male", "female").replace("\0", "male") for p in LOADED]
    df = answers(spark, LOADED + mirrored, samples=20)
    rows = {r["profession"]: r for r in bias.counterfactual(df).collect()}
    assert set(rows) == set(standin.STEREOTYPED_SHARE_FEMALE)
    for profession, row in rows.items():
        assert row["agentic_diff"] > 1.5 and row["communal_diff"] < -1.5, profession
        assert row["male_other_gender"] == 0 and row["female_other_gender"] == 0
        assert abs(row["words_diff"]) < 3  # same template: the length does not differ much
