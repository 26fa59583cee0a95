"""Tables of text that read well in JupyterLab, Colab and on GitHub.

A pandas table right-aligns every cell, which suits numbers and makes sentences
hard to read. ``text_table(df)`` shows the same table with text left-aligned (in
HTML) and as plain text elsewhere; both renderings are deterministic, so a saved
notebook does not change when it is re-run on the same outputs.
"""

from __future__ import annotations

import pandas as pd


class TextTable:
    """A DataFrame shown with left-aligned cells; ``.df`` is the table itself."""

    def __init__(self, df: pd.DataFrame, max_colwidth: int):
        self.df, self.max_colwidth = df, max_colwidth

    def _repr_html_(self) -> str:
        with pd.option_context("display.max_colwidth", self.max_colwidth):
            html = self.df.to_html(justify="left", escape=True)
        return html.replace("<td>", '<td style="text-align: left">')

    def __repr__(self) -> str:
        with pd.option_context("display.max_colwidth", self.max_colwidth):
            return self.df.to_string(justify="left")


def text_table(df: pd.DataFrame, max_colwidth: int = 120) -> TextTable:
    """``df`` with its cells left-aligned, each cut to ``max_colwidth`` characters."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"text_table: df must be a pandas DataFrame, got {type(df).__name__}")
    if isinstance(max_colwidth, bool) or not isinstance(max_colwidth, int) or max_colwidth < 4:
        raise ValueError(f"text_table: max_colwidth must be an int >= 4, got {max_colwidth!r}")
    return TextTable(df, max_colwidth)
