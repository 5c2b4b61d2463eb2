"""The drifting features of a day as one PNG (baseline vs day shares per bin), embedded in markdown.

Dagster has no plot metadata type; a base64 PNG inside ``MetadataValue.md`` shows in the UI.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from smspark_assets.monitoring.checks import DriftReport, FeatureDrift

MAX_PANELS = 6


def drift_png(features: list[FeatureDrift], title: str = "") -> bytes:
    """Side-by-side bars of the baseline's and the day's shares for each of ``features`` (at most
    :data:`MAX_PANELS`), as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    import matplotlib.pyplot as plt

    shown = features[:MAX_PANELS]
    cols = min(3, max(1, len(shown)))
    rows = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    for ax, f in zip(axes.flat, shown):
        x = np.arange(len(f.labels))
        ax.bar(x - 0.2, f.expected, width=0.4, label="baseline", color="#7f8c8d")
        ax.bar(x + 0.2, f.actual, width=0.4, label="day", color="#c0392b" if f.severity == "error" else "#e67e22")
        ax.set_xticks(x, f.labels, rotation=60, ha="right", fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(f"{f.name}  PSI {f.psi:.3f} ({f.severity})", fontsize=8)
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    plt.close(fig)
    return buffer.getvalue()


def drift_markdown(report: DriftReport, title: str = "") -> str:
    """Markdown with the plot of the drifting features (and the scores when they drift), or a line saying
    nothing drifts."""
    panels = report.drifting()
    if report.score is not None and report.score.severity != "ok":
        panels = [report.score, *panels]
    if not panels:
        return f"No feature drifts beyond its warning band ({report.rows_checked} rows checked)."
    png = base64.b64encode(drift_png(panels, title)).decode("ascii")
    names = ", ".join(f"{f.name} ({f.severity}, PSI {f.psi:.3f})" for f in panels[:MAX_PANELS])
    more = f" and {len(panels) - MAX_PANELS} more" if len(panels) > MAX_PANELS else ""
    return f"Drifting: {names}{more}\n\n![drifting features](data:image/png;base64,{png})"
