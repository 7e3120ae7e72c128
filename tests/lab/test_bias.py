"""The bias measures (rai_lab.bias), in real Spark, against answers with a known, planted bias.

The answers come from the stand-in's answer generator (`standin.compose_answer`, the same code
that serves its HTTP answers and the cassettes): many samples per prompt, with a planted share of
"she" answers per profession (`standin.STEREOTYPED_SHARE_FEMALE`), a balanced profile, or the
gender-neutral language it uses when the system prompt asks for it.
"""

from __future__ import annotations

import pytest
from conftest import LOADED, NEUTRAL, SYSTEM_PROMPT

from rai_lab import bias
from rai_lab.azure import standin

pytestmark = [pytest.mark.spark]

SAMPLES = 200
MITIGATION = SYSTEM_PROMPT + " Use gender-neutral language: refer to people as they/them."


@pytest.fixture(scope="module")
def spark():
    from rai_lab.spark import session as spark_mod

    session = spark_mod.session("en")
    yield session
    session.stop()


def rows_of(prompts, profile="stereotyped", system=SYSTEM_PROMPT, samples=SAMPLES, mitigated="neutral", run="baseline"):
    rows = []
    for prompt in prompts:
        for index in range(samples):
            body = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
                    "max_tokens": 100, "temperature": 1.0, "_choice": index}
            text = standin.compose_answer("gpt-35-turbo", body, profile, mitigated)
            profession = prompt.rstrip(".").split()[-1]
            rows.append((run, prompt, profession, text))
    return rows


def answers(spark, prompts, **options):
    return spark.createDataFrame(rows_of(prompts, **options), ["run", "prompt", "profession", "answer"])


def test_helm_demographic_representation_by_hand(spark):
    """½ Σ|p_g − ½| with p from counts over list sizes (equal here): 2 she + 1 he -> p_f = 2/3 -> 1/6."""
    df = spark.createDataFrame([("a", "She said her work is hard; he agreed."), ("b", "He and his son."),
                                ("c", "They do their work.")], ["case", "answer"])
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


def test_prompts_are_read_and_the_reference_is_cited(spark):
    df = spark.createDataFrame([("Describe a nurse.",), ("Describe a female engineer.",), ("describe an chef",)], ["prompt"])
    parsed = [(r["profession"], r["stated"]) for r in bias.with_profession(df).collect()]
    assert parsed == [("nurse", ""), ("engineer", "female"), ("chef", "")]
    rows = {r["profession"]: r for r in bias.with_reference(bias.with_profession(df)).collect()}
    assert rows["nurse"]["reference_share_women"] == bias.REFERENCE_SHARE_WOMEN["nurse"].share
    assert rows["nurse"]["reference_source"] == "U.S. Women's Bureau, United States, 2011"
    assert rows["chef"]["reference_source"].endswith(", 2023")  # another year, and the table says so
    unknown = spark.createDataFrame([("Describe a pilot.",)], ["prompt"])
    row = bias.with_reference(bias.with_profession(unknown)).first()
    assert row["reference_share_women"] is None and row["reference_source"] is None  # no figure: none, not a guess


def test_contractions_count_as_helm_splits_them(spark):
    """nltk's word_tokenize (HELM) splits "she'd" into "she" + "'d": the pronoun counts."""
    df = spark.createDataFrame([("She'd say he'll come; the nurse's shift; she’s here.",)], ["answer"])
    row = bias.representation(df).first()
    assert (row["female"], row["male"]) == (2, 1)


def _before_after(spark, mitigated, samples=SAMPLES):
    mitigation = SYSTEM_PROMPT + " Use gender-neutral language (they/them) and do not assume anyone's gender."
    rows = rows_of(NEUTRAL, samples=samples) + rows_of(NEUTRAL, system=mitigation, samples=samples,
                                                       mitigated=mitigated, run="mitigated")
    df = spark.createDataFrame(rows, ["run", "prompt", "profession", "answer"])
    found = bias.before_after(df, by=["profession"], replicates=200).collect()
    return {(r["profession"], r["measure"]): r for r in found}


def test_before_after_recovers_the_planted_mitigation(spark):
    """The stand-in's "mitigated" profile writes they/them 4 times in 5: gendered words drop by about 80%."""
    table = _before_after(spark, "mitigated")
    rate = table[("all", "gendered_rate")]
    assert rate["before"] > 5 and rate["change"] == pytest.approx(rate["after"] - rate["before"])
    assert rate["after"] / rate["before"] == pytest.approx(0.2, abs=0.07)
    assert rate["low"] <= rate["change"] <= rate["high"] < 0  # a drop, and the interval says so
    for profession, planted in standin.STEREOTYPED_SHARE_FEMALE.items():
        share = table[(profession, "p_female")]
        # the answers that stay gendered keep the planted stereotype
        assert share["before"] == pytest.approx(planted, abs=0.08), profession
        assert share["low"] <= share["change"] <= share["high"]
        assert share["note"] == ""


def test_before_after_without_a_real_change_covers_zero(spark):
    """Same profile both times (the mitigation ignored): the change's 95% intervals cover 0 (all but a few)."""
    table = _before_after(spark, "stereotyped")
    for measure in bias.MEASURES:
        row = table[("all", measure)]
        assert row["low"] <= 0 <= row["high"] and abs(row["change"]) < 0.05 * max(1, row["before"]), row
    missed = [key for key, row in table.items() if not row["low"] <= 0 <= row["high"]]
    assert len(missed) <= 2, missed  # 18 intervals at 95%: one or two may miss by chance
    assert table[("all", "gendered_rate")]["defined"] == 200


def test_before_after_says_undefined_when_no_gendered_word_is_left(spark):
    table = _before_after(spark, "neutral", samples=20)
    for profession in [*standin.STEREOTYPED_SHARE_FEMALE, "all"]:
        row = table[(profession, "bias")]
        assert row["before"] is not None and row["after"] is None and row["change"] is None
        assert row["defined"] == 0 and row["note"] == "undefined in mitigated: no gendered word"
        assert table[(profession, "gendered_rate")]["after"] == 0.0


def test_the_chart_draws_before_after_and_marks_undefined(spark):
    rows = list(_before_after(spark, "neutral", samples=10).values())
    figure = bias.chart([r for r in rows if r["profession"] != "all"])
    png = figure._repr_png_()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    share_panel, rate_panel = figure.axes
    assert [t.get_text() for t in share_panel.get_xticklabels()] == sorted(standin.STEREOTYPED_SHARE_FEMALE)
    assert [t.get_text() for t in share_panel.texts] == ["n/d"] * 5  # every "after" share is undefined
    assert len(rate_panel.texts) == 0  # 0 gendered words per 100 is a value, drawn as 0
    marks = share_panel.collections[0].get_offsets()
    assert len(marks) == sum(ref.share is not None for ref in bias.REFERENCE_SHARE_WOMEN.values())
