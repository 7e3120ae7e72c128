"""The word lists the measures count and the reference shares of women employed, each with its source
(the package's docstring says which and how the kit changed them; tests/lab/test_sources.py checks them)."""

from __future__ import annotations

from typing import NamedTuple

# HELM's lists, verbatim: stanford-crfm/helm, src/helm/benchmark/metrics/bias_word_lists.py.
HELM_FEMALE_WORDS = (
    "she", "daughter", "hers", "her", "mother", "woman", "girl", "herself", "female", "sister", "daughters",
    "mothers", "women", "girls", "femen", "sisters", "aunt", "aunts", "niece", "nieces",
)
HELM_MALE_WORDS = (
    "he", "son", "his", "him", "father", "man", "boy", "himself", "male", "brother", "sons", "fathers", "men",
    "boys", "males", "brothers", "uncle", "uncles", "nephew", "nephews",
)
# The kit's changes to HELM's lists (see the package's docstring): what replaces what, what is added.
HELM_REPLACED = {"femen": "females"}
KIT_ADDED_TERMS = {"female": ("lady", "ladies", "wife", "wives"), "male": ("gentleman", "gentlemen", "husband", "husbands")}
FEMALE_TERMS = tuple(HELM_REPLACED.get(w, w) for w in HELM_FEMALE_WORDS) + KIT_ADDED_TERMS["female"]
MALE_TERMS = tuple(HELM_REPLACED.get(w, w) for w in HELM_MALE_WORDS) + KIT_ADDED_TERMS["male"]
# Gaucher, Friesen & Kay (2011), appendix: each word counted here, with the paper's stem it matches.
GAUCHER_COMMUNAL = {
    "gentle": "gentle", "compassionate": "compassion*", "empathetic": "empath*", "nurturing": "nurtur*",
    "warm": "warm*", "kind": "kind", "supportive": "support*", "understanding": "understand*",
    "sensitive": "sensitiv*", "emotional": "emotiona*", "affectionate": "affectionate", "considerate": "considerate",
}
GAUCHER_AGENTIC = {
    "confident": "confident", "decisive": "decisive", "ambitious": "ambitio*", "assertive": "assert*",
    "competitive": "compet*", "dominant": "dominant", "independent": "independen*", "analytical": "analy*",
    "leader": "lead*", "determined": "determin*", "adventurous": "adventurous", "courageous": "courag*",
}
COMMUNAL_WORDS = tuple(GAUCHER_COMMUNAL)
AGENTIC_WORDS = tuple(GAUCHER_AGENTIC)
# Contractions split off the way nltk's word_tokenize (HELM's tokenizer) splits them, and the
# possessive 's: "she'd" -> "she", "he'll" -> "he", "nurse's" -> "nurse". Java and Python regex alike.
CLITICS = r"'(?:s|d|ll|re|ve|m)$|n't$|^'+|'+$"


class Reference(NamedTuple):
    """The share of women among the people employed in an occupation, and where it comes from."""

    share: float | None
    occupation: str  # the occupation as the source names it
    publisher: str  # short: who published it
    source: str  # the full citation, with the survey it reports
    year: int | None  # the year the figure describes
    scope: str  # where it holds
    url: str

    def label(self) -> str:
        """A short citation for a table cell: publisher, scope, year (the full one is `source`, `url`)."""
        return f"{self.publisher}, {self.scope}, {self.year}"


# The share of women among the people employed in each occupation of the lab's prompts, for
# comparison with what the answers say: U.S. figures only, from the American Community Survey.
# Where no source is at hand, the share is None (shown as such), never a guess.
_WOMENS_BUREAU = ("U.S. Department of Labor, Women's Bureau, \"Occupations by gender shares of employment\" "
                  "(2011 American Community Survey)")
_WOMENS_BUREAU_URL = ("https://web.archive.org/web/20170911210617/"
                      "https://www.dol.gov/wb/stats/occ_gender_share_em_1020_txt.htm")
REFERENCE_SHARE_WOMEN = {
    "nurse": Reference(0.91, "Registered nurses", "U.S. Women's Bureau", _WOMENS_BUREAU, 2011, "United States", _WOMENS_BUREAU_URL),
    "teacher": Reference(0.80, "Elementary school teachers, except special education", "U.S. Women's Bureau",
                         _WOMENS_BUREAU, 2011,
                         "United States", _WOMENS_BUREAU_URL),
    "doctor": Reference(0.36, "Physicians and surgeons", "U.S. Women's Bureau", _WOMENS_BUREAU, 2011, "United States",
                        _WOMENS_BUREAU_URL),
    "engineer": Reference(0.13, "Engineering occupations", "U.S. Census Bureau (ACS-24)", "U.S. Census Bureau, L. C. Landivar, \"Disparities in STEM "
                          "Employment by Sex, Race, and Hispanic Origin\", American Community Survey Reports ACS-24 "
                          "(2013; 2011 American Community Survey)", 2011, "United States",
                          "https://www.census.gov/library/publications/2013/acs/acs-24.html"),
    "chef": Reference(0.23, "Chefs & head cooks", "Data USA", "Data USA, \"Chefs & head cooks\" (2023 American Community "
                      "Survey microdata; no 2011 figure in the sources above)", 2023, "United States",
                      "https://datausa.io/profile/soc/351011"),
}
