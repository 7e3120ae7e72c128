"""The before/after measures per profession, drawn with matplotlib (no pyplot state: the figure shows itself in
Jupyter and with Databricks' ``display``)."""

from __future__ import annotations

from rai_lab.bias.words import REFERENCE_SHARE_WOMEN


def chart(rows, reference: dict | None = None, skip: tuple[str, ...] = ("all",)):
    """The before/after measures per profession at a glance: a matplotlib figure of two panels.

    `rows`: ``before_after(..., by=["profession"])`` collected: a pandas DataFrame, or rows or dicts. Left: the
    share of female terms before and after, with the reference share of women employed
    (REFERENCE_SHARE_WOMEN) as a mark; right: gendered terms per 100 words before and after. The
    figure draws itself as PNG in Jupyter (``display(figure)``) and Databricks shows it with ``display``.
    """
    import io

    from matplotlib.figure import Figure

    class Chart(Figure):
        def _repr_png_(self):
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            return buffer.getvalue()

    reference = REFERENCE_SHARE_WOMEN if reference is None else reference
    if hasattr(rows, "to_dict"):  # pandas, from toPandas(): its NaN is an undefined value
        rows = [{k: (None if isinstance(v, float) and v != v else v) for k, v in item.items()}
                for item in rows.to_dict("records")]
    table: dict[str, dict[str, dict]] = {}
    for row in rows:
        item = row.asDict() if hasattr(row, "asDict") else dict(row)
        if item["profession"] not in skip:  # the overall rows of before_after
            table.setdefault(item["measure"], {})[item["profession"]] = item
    professions = sorted({p for measure in table.values() for p in measure})
    figure = Chart(figsize=(11, 4))
    panels = figure.subplots(1, 2)
    width = 0.38
    spots = range(len(professions))
    for panel, measure, title in (
        (panels[0], "p_female", "Part des termes féminins / share of female terms"),
        (panels[1], "gendered_rate", "Termes genrés pour 100 mots / gendered terms per 100 words"),
    ):
        values = table.get(measure, {})
        for offset, side, label, color in ((-width / 2, "before", "avant / before", "#c05030"),
                                           (width / 2, "after", "après / after", "#3070b0")):
            heights = [values.get(p, {}).get(side) for p in professions]
            bars = panel.bar([i + offset for i in spots], [h if h is not None else 0 for h in heights], width,
                             label=label, color=color)
            for bar, height in zip(bars, heights):
                if height is None:  # undefined, not 0: say so on the chart
                    panel.annotate("n/d", (bar.get_x() + bar.get_width() / 2, 0), ha="center", va="bottom", fontsize=8)
        if measure == "p_female":
            marks = [(i, reference[p][0]) for i, p in enumerate(professions) if p in reference and reference[p][0] is not None]
            if marks:
                panel.scatter([i for i, _ in marks], [v for _, v in marks], marker="D", color="black", zorder=3,
                              label="femmes en emploi, É.-U. / women employed, U.S. (ref.)")
            panel.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
            panel.set_ylim(0, 1.3)  # room for the legend above the bars
        else:
            tallest = max([v.get(side) or 0 for v in values.values() for side in ("before", "after")] + [1])
            panel.set_ylim(0, tallest * 1.3)
        panel.set_xticks(list(spots), professions)
        panel.set_title(title, fontsize=10)
        panel.legend(fontsize=8, loc="upper left", ncol=2)
    figure.suptitle("Avant / après l'atténuation — before / after the mitigation (n/d: aucun terme genré / no gendered word)",
                    fontsize=10)
    figure.tight_layout()
    return figure
