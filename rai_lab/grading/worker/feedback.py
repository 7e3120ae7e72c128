"""nbconvert preprocessors for grading: what feedback shows of the check cells and of tracebacks, and output limits."""

from __future__ import annotations

import os
import re
import tempfile

from jinja2 import BytecodeCache
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Integer

from rai_lab.cells import is_check


class HideTestCode(Preprocessor):
    """In feedback, a failed check shows its message, not the check cell's code or traceback."""

    enabled = Bool(True)  # nbconvert runs a registered preprocessor only when it is enabled

    def preprocess_cell(self, cell, resources, index):
        if is_check(cell):
            cell.source = cell.source.split("\n", 1)[0]  # the visible title line
            for output in cell.outputs:
                if output.get("output_type") == "error":
                    message = output.get("evalue") or output.get("ename", "")
                    output["traceback"] = [f"\x1b[0;31m✗\x1b[0m {message}"]
        return cell, resources


class LimitOutputSize(Preprocessor):
    """Cut any text output longer than `max_chars`, so one huge output can't swamp grading."""

    enabled = Bool(True)
    max_chars = Integer(100_000).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and len(output.get("text", "")) > self.max_chars:
                output["text"] = output["text"][: self.max_chars] + "\n[… output cut by rai-lab …]\n"
            for mime, value in list(output.get("data", {}).items()):
                if isinstance(value, str) and len(value) > self.max_chars:
                    output["data"][mime] = value[: self.max_chars] + "\n[… output cut by rai-lab …]"
        return cell, resources


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _grader_paths() -> list[str]:
    """Folders of the grader's machine that a learner's output must not show (longest first)."""
    import sys

    from rai_lab import paths

    found = {str(paths.ROOT), sys.prefix, sys.base_prefix, os.path.expanduser("~"), tempfile.gettempdir(),
             os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    return sorted((p for p in found if p and p != "/"), key=len, reverse=True)


def scrub_paths(text: str, folders: list[str]) -> str:
    """`text` with every path under the grader's folders (and any site-packages path) shortened to '…/name'."""
    for folder in folders:
        text = re.sub(re.escape(folder) + r"(/[^\s'\"():,]*)?", lambda m: "…/" + (m.group(1) or "/").rsplit("/", 1)[-1],
                      text)
    return re.sub(r"/[^\s'\"():,]*/(site|dist)-packages/[^\s'\"():,]*", lambda m: "…/" + m.group(0).rsplit("/", 1)[-1],
                  text)


class TrimTracebacks(Preprocessor):
    """A learner's error shows their own cells' frames and the message, never the kit's or a library's frames,
    nor a path of the grader's machine (in any output)."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        self._folders = _grader_paths()
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                output["traceback"] = self.trim(output.get("traceback") or [])
                output["evalue"] = scrub_paths(str(output.get("evalue", "")), self._folders)
            elif kind == "stream":
                output["text"] = scrub_paths(output.get("text", ""), self._folders)
            for mime, value in list(output.get("data", {}).items()):
                if isinstance(value, str) and mime.startswith("text/"):
                    output["data"][mime] = scrub_paths(value, self._folders)
        return cell, resources

    def trim(self, traceback: list[str]) -> list[str]:
        """IPython's frames minus those in files (the kit's, a library's): the learner's cells and the message."""
        kept = [scrub_paths(entry, self._folders) for entry in traceback
                if not _ANSI.sub("", entry).lstrip().startswith("File ")]
        return kept or [scrub_paths(entry, self._folders) for entry in traceback[-1:]]


class CompiledTemplates(BytecodeCache):
    """A Jinja bytecode cache in memory: each template's compiled code, kept with its source's checksum, for
    environments configured alike (what the compiled code depends on besides the source is part of the key)."""

    def __init__(self):
        self.codes: dict = {}

    @staticmethod
    def key(bucket) -> tuple:
        env = bucket.environment
        return (bucket.key, tuple(sorted(env.extensions)), env.is_async, repr(env.autoescape), env.optimized,
                env.block_start_string, env.block_end_string, env.variable_start_string, env.variable_end_string,
                env.comment_start_string, env.comment_end_string, env.line_statement_prefix, env.line_comment_prefix,
                env.trim_blocks, env.lstrip_blocks, env.newline_sequence, env.keep_trailing_newline)

    def load_bytecode(self, bucket) -> None:
        found = self.codes.get(self.key(bucket))
        if found is not None and found[0] == bucket.checksum:
            bucket.code = found[1]

    def dump_bytecode(self, bucket) -> None:
        self.codes[self.key(bucket)] = (bucket.checksum, bucket.code)


COMPILED = CompiledTemplates()


def reuse_compiled_templates() -> None:
    """Compile each of nbconvert's templates once per process, not at every feedback page.

    nbgrader makes a new HTML exporter for every learner's feedback, and each makes a new Jinja environment that
    parses and compiles the same templates again. Every environment nbconvert makes now shares COMPILED.
    """
    from nbconvert.exporters.templateexporter import TemplateExporter

    if getattr(TemplateExporter._create_environment, "rai_lab", False):
        return
    original = TemplateExporter._create_environment

    def _create_environment(self):
        environment = original(self)
        if environment.bytecode_cache is None:
            environment.bytecode_cache = COMPILED
        return environment

    _create_environment.rai_lab = True
    TemplateExporter._create_environment = _create_environment
