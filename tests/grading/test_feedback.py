"""The feedback pages' templates, compiled once per grading worker (rai_lab.grading.worker.feedback)."""

from __future__ import annotations

import nbformat
from jinja2 import DictLoader, Environment
from nbconvert import HTMLExporter

from rai_lab.grading.worker import feedback


def _notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Retour\\n*vérification* échouée"),
                nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\\n")])]
    return nb


def test_a_feedback_page_is_the_same_with_its_templates_compiled_once():
    nb = _notebook()
    plain = HTMLExporter().from_notebook_node(nb)[0]
    feedback.reuse_compiled_templates()
    feedback.reuse_compiled_templates()  # once is enough; a second call changes nothing
    first = HTMLExporter().from_notebook_node(nb)[0]
    compiled = len(feedback.COMPILED.codes)
    second = HTMLExporter().from_notebook_node(nb)[0]
    assert plain == first == second
    assert compiled > 5 and len(feedback.COMPILED.codes) == compiled  # the second page compiled nothing new


def test_a_template_whose_source_changed_is_compiled_again():
    cache = feedback.CompiledTemplates()
    sources = {"page": "bonjour {{ name }}"}
    env = Environment(loader=DictLoader(sources), bytecode_cache=cache)
    assert env.get_template("page").render(name="Ada") == "bonjour Ada"
    sources["page"] = "hello {{ name }}"
    again = Environment(loader=DictLoader(sources), bytecode_cache=cache)
    assert again.get_template("page").render(name="Ada") == "hello Ada"
    # the same source in an environment with other delimiters does not take the code compiled for the default ones
    other = Environment(loader=DictLoader(sources), variable_start_string="[[", variable_end_string="]]",
                        bytecode_cache=cache)
    assert other.get_template("page").render(name="Ada") == "hello {{ name }}"
