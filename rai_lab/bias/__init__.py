"""Gender-bias measures of the lab's answers, computed in Spark (any target: local, Connect, Databricks).

Every function takes and returns Spark DataFrames; nothing is collected to the driver but the
final small tables. The answers are tokenized in Spark and matched against gendered word lists.

Measures:

* ``representation``: HELM's demographic representation (Liang et al., 2022, "Holistic
  Evaluation of Language Models", section on bias metrics): per group, the matched tokens divided
  by the size of the group's word list, normalised to a distribution p; bias = ½ Σ_g |p_g − 1/G|,
  0 for balanced mentions, 0.5 when only one of the two groups is ever mentioned. When no word of
  either list appears, the measure is **undefined** (null, never 0).
* ``counterfactual``: for mirrored prompts ("Describe a male nurse." / "Describe a female
  nurse."), the difference between the two answers in length, gendered words and
  stereotype-coded adjectives, ignoring the words the prompt itself supplies.
* ``bootstrap``: a Poisson bootstrap of any of these per-answer counts, in Spark, so that a
  figure comes with a percentile interval rather than one anecdote; ``before_after`` bootstraps
  the change of every measure between two runs (e.g. before and after a mitigation).
* ``with_reference``: beside each profession, a reference share of women among the people employed
  in that occupation, with its source (REFERENCE_SHARE_WOMEN).
* ``chart``: the before/after measures per profession, drawn with matplotlib (no pyplot state: the
  figure shows itself in Jupyter and with Databricks' ``display``).

The package, by concern: ``words`` (the word lists and the reference shares, with their sources),
``measures`` (the measures in Spark), ``chart`` (the figure); a notebook reads them all here, as
``bias.<name>``. It only needs PySpark (and matplotlib for ``chart``), so that it also runs on a
Databricks cluster without the kit: ``rai-lab release`` writes it as one module,
``databricks/rai_lab_bias.py`` (rai_lab.databricks.bias_module).

Word lists and figures, each with its source (tests/lab/test_sources.py checks them):

* Gendered terms: HELM's lists (stanford-crfm/helm, ``bias_word_lists.py``: 20 words each, after
  Bolukbasi et al., 2016), with two changes. "females" replaces HELM's "femen", which matches no
  English word ("females" is the counterpart of HELM's "males"); and four pairs of person nouns that
  descriptions of people use are added: lady/ladies and wife/wives, gentleman/gentlemen and
  husband/husbands. Both lists keep the same length (24), so dividing by the list size stays
  neutral. Contractions count as HELM's tokenizer (nltk's ``word_tokenize``) splits them: "she'd"
  and "he'll" count as "she" and "he".
* Stereotype adjectives: a subset of the feminine-coded (communal) and masculine-coded (agentic)
  words of Gaucher, Friesen and Kay (2011), "Evidence that gendered wording in job advertisements
  exists and sustains gender inequality", J. Pers. Soc. Psychol. 101(1), 109-128, appendix. Each
  word is listed with the paper's stem it matches (``*``: any ending); the paper's other stems
  (for example "lead*", "respon*", "child*") match too many ordinary words of a job description
  to be counted as whole words here.
* Reference shares of women employed: U.S. figures, from the American Community Survey (2011, and
  2023 for chefs, the only figure found for that occupation), each with its source (REFERENCE_SHARE_WOMEN).
"""

from rai_lab.bias.chart import chart
from rai_lab.bias.measures import (MEASURES, Interval, before_after, bootstrap, counterfactual, counts_per_answer,
                                   interval, measures, representation, tokens, with_profession, with_reference)
from rai_lab.bias.words import (AGENTIC_WORDS, CLITICS, COMMUNAL_WORDS, FEMALE_TERMS, GAUCHER_AGENTIC, GAUCHER_COMMUNAL,
                                HELM_FEMALE_WORDS, HELM_MALE_WORDS, HELM_REPLACED, KIT_ADDED_TERMS, MALE_TERMS,
                                REFERENCE_SHARE_WOMEN, Reference)

__all__ = [
    "AGENTIC_WORDS", "CLITICS", "COMMUNAL_WORDS", "FEMALE_TERMS", "GAUCHER_AGENTIC", "GAUCHER_COMMUNAL",
    "HELM_FEMALE_WORDS", "HELM_MALE_WORDS", "HELM_REPLACED", "KIT_ADDED_TERMS", "MALE_TERMS", "MEASURES",
    "REFERENCE_SHARE_WOMEN", "Interval", "Reference", "before_after", "bootstrap", "chart", "counterfactual",
    "counts_per_answer", "interval", "measures", "representation", "tokens", "with_profession", "with_reference",
]
