"""nbconvert preprocessors for grading: what feedback shows of the hidden tests, and output limits."""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Integer


def _is_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


class HideTestCode(Preprocessor):
    """In feedback, a failed hidden test shows its message, not the test's code or traceback."""

    enabled = Bool(True)  # nbconvert runs a registered preprocessor only when it is enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and _is_test(cell):
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
