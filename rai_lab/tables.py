"""Tables as a learner reads them in JupyterLab: text left-aligned, numbers rounded, links short.

JupyterLab right-aligns every table cell, which makes the model's answers hard to read; Spark's
own HTML shows doubles as Python writes them (0.19999999999999998) and URLs in full. The kit
registers `spark_html` and `pandas_html` as the HTML of Spark and pandas DataFrames in its kernel.
"""

from __future__ import annotations

import html
import math
import re
from urllib.parse import urlsplit

MAX_ROWS = 20
DIGITS = 3
URL = re.compile(r"https?://[^\s<>\"]+")


def number(value: float) -> str:
    """A float for reading: 3 decimals at most, trailing zeros dropped (0.19999999999999998 -> 0.2)."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    text = f"{value:.{DIGITS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _text(value: str) -> str:
    """Escaped text with each URL as a short link (its host)."""
    out, last = [], 0
    for found in URL.finditer(value):
        out.append(html.escape(value[last:found.start()]))
        url = found.group(0)
        out.append(f'<a href="{html.escape(url)}" target="_blank" rel="noopener">{html.escape(urlsplit(url).netloc)}</a>')
        last = found.end()
    out.append(html.escape(value[last:]))
    return "".join(out)


def cell(value) -> tuple[str, str]:
    """(the cell's HTML, its alignment)."""
    if value is None:
        return '<span style="opacity:0.6">null</span>', "left"
    if isinstance(value, bool):
        return str(value), "left"
    if isinstance(value, float):
        return number(value), "right"
    if isinstance(value, int):
        return str(value), "right"
    return _text(str(value)), "left"


def render(columns: list[str], rows: list[list], more: bool, note: str = "") -> str:
    head = "".join(f'<th style="text-align:left">{html.escape(str(name))}</th>' for name in columns)
    body = []
    for row in rows:
        cells = []
        for value in row:
            shown, align = cell(value)
            cells.append(f'<td style="text-align:{align};vertical-align:top;white-space:pre-wrap">{shown}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    tail = f"<p>{html.escape(note)}</p>" if more and note else ""
    return f'<table class="rai-lab-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{tail}'


def spark_html(df) -> str:
    """A Spark DataFrame (classic or Connect) as a table: its first MAX_ROWS rows, in one query."""
    found = df.limit(MAX_ROWS + 1).collect()
    return render(list(df.columns), [list(row) for row in found[:MAX_ROWS]], len(found) > MAX_ROWS,
                  f"only showing top {MAX_ROWS} rows")


def pandas_html(frame) -> str:
    """A pandas DataFrame as a table (its index left out when it is the default 0..n-1)."""
    default_index = list(frame.index) == list(range(len(frame)))
    shown = frame.head(MAX_ROWS)
    columns = ([] if default_index else [frame.index.name or ""]) + [str(c) for c in frame.columns]
    rows = []
    for index, values in zip(shown.index, shown.itertuples(index=False, name=None)):
        row = [_plain(v) for v in values]
        rows.append(row if default_index else [_plain(index), *row])
    return render(columns, rows, len(frame) > MAX_ROWS, f"{len(frame)} rows, first {MAX_ROWS} shown")


def _plain(value):
    """numpy scalars as Python ones; NaN as null."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return value
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
