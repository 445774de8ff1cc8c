"""The report's figures, drawn with matplotlib and returned as PNG data URIs.

Figures are built with :class:`matplotlib.figure.Figure` rather than pyplot:
no global state, no GUI backend, nothing left open.
"""

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._data import as_float

REAL, SYNTHETIC, HOLDOUT = "#1f77b4", "#ff7f0e", "#2ca02c"
MAX_BARS = 20  # categories shown per column; the rest are summed as "(other)"


def to_data_uri(figure):
    """The figure as a ``data:image/png;base64,...`` URI, embeddable in HTML."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/png;base64,{encoded}"


def column_distribution(real, synthetic, kind, title):
    """Real and synthetic distribution of one column: overlaid histograms or bars."""
    figure = Figure(figsize=(4, 2.8))
    ax = figure.subplots()
    if kind == "categorical":
        shares = pd.DataFrame({"real": _shares(real), "synthetic": _shares(synthetic)})
        shares = shares.fillna(0)
        shares = shares.loc[shares.sum(axis=1).sort_values(ascending=False).index]
        if len(shares) > MAX_BARS:
            rest = shares.iloc[MAX_BARS - 1 :].sum().rename("(other)")
            shares = pd.concat([shares.iloc[: MAX_BARS - 1], rest.to_frame().T])
        position = np.arange(len(shares))
        ax.bar(position - 0.2, shares["real"], 0.4, color=REAL, label="real")
        ax.bar(
            position + 0.2, shares["synthetic"], 0.4, color=SYNTHETIC, label="synthetic"
        )
        labels = [str(v)[:14] for v in shares.index]
        ax.set_xticks(position, labels, rotation=45, ha="right")
        ax.set_ylabel("share of rows")
    else:
        a, b = as_float(real, kind), as_float(synthetic, kind)
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        both = np.concatenate([a, b])
        edges = _central_edges(both, 30)
        if len(both) and np.all(both == np.round(both)) and np.ptp(both) <= 40:
            edges = np.arange(both.min(), both.max() + 2) - 0.5  # a bar per integer
        elif len(both) and (both.min() < edges[0] or both.max() > edges[-1]):
            title += " (central 99%)"
        if kind == "datetime":  # matplotlib's dates: days since the epoch
            a, b, edges = (np.asarray(x) / 8.64e13 for x in (a, b, edges))
            ax.xaxis_date()
            figure.autofmt_xdate()
        ax.hist(a, edges, density=True, color=REAL, alpha=0.5, label="real")
        ax.hist(b, edges, density=True, color=SYNTHETIC, alpha=0.5, label="synthetic")
        ax.set_ylabel("density")
        missing = real.isna().mean(), synthetic.isna().mean()
        if any(missing):
            title += f"\nmissing: {missing[0]:.0%} real, {missing[1]:.0%} synthetic"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return to_data_uri(figure)


def _central_edges(values, bins):
    """Bin edges over the central 99% of the values: long tails hide the bulk."""
    if not len(values):
        return np.linspace(0, 1, bins + 1)
    low, high = np.percentile(values, [0.5, 99.5])
    return (
        np.linspace(low, high, bins + 1)
        if high > low
        else np.histogram_bin_edges(values, bins)
    )


def _shares(series):
    """Share of rows per value, missing values as "(missing)"."""
    values = series.astype(object).where(series.notna(), "(missing)")
    return values.value_counts(normalize=True)


def correlations(real, synthetic):
    """Pearson correlation matrices side by side, and their absolute difference."""
    r_real, r_syn = real.corr(), synthetic.corr()
    n = len(r_real)
    figure = Figure(figsize=(13, 2 + 0.3 * n), layout="constrained")
    axes = figure.subplots(1, 3)
    panels = [
        (r_real, "real", "RdBu_r", -1),
        (r_syn, "synthetic", "RdBu_r", -1),
        ((r_real - r_syn).abs(), "|real - synthetic|", "Reds", 0),
    ]
    for ax, (matrix, title, cmap, low) in zip(axes, panels):
        image = ax.imshow(matrix.to_numpy(), cmap=cmap, vmin=low, vmax=1)
        ax.set_xticks(range(n), [str(c)[:14] for c in matrix.columns], rotation=90)
        ax.set_yticks(range(n), [str(c)[:14] for c in matrix.index])
        ax.set_title(title)
        figure.colorbar(image, ax=ax, fraction=0.046)
    return to_data_uri(figure)


def pair_scores(pairs, columns):
    """Heat map of every column pair's trend similarity (1: same trend)."""
    n = len(columns)
    matrix = pd.DataFrame(np.eye(n), index=columns, columns=columns)
    for row in pairs.itertuples():
        matrix.loc[row.column, row.column_2] = matrix.loc[row.column_2, row.column] = (
            row.score
        )
    figure = Figure(figsize=(2 + 0.3 * n, 1.5 + 0.3 * n))
    ax = figure.subplots()
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="RdYlGn", vmin=0, vmax=1)
    ax.set_xticks(range(n), [str(c)[:14] for c in columns], rotation=90)
    ax.set_yticks(range(n), [str(c)[:14] for c in columns])
    ax.set_title("column pair similarity")
    figure.colorbar(image, ax=ax, fraction=0.046)
    return to_data_uri(figure)


def distances(dcr):
    """Histograms of the distances to the closest training row."""
    figure = Figure(figsize=(6, 3.2))
    ax = figure.subplots()
    edges = _central_edges(np.concatenate(list(dcr.values())), 40)
    colors = {"synthetic": SYNTHETIC, "holdout": HOLDOUT}
    for name, values in dcr.items():
        ax.hist(
            values,
            edges,
            density=True,
            alpha=0.5,
            color=colors[name],
            label=f"{name} rows (median {np.median(values):.3g})",
        )
    ax.set_xlabel("distance to the closest training row (central 99%)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return to_data_uri(figure)


def class_accuracy(accuracy):
    """Bar chart of the per-class accuracy of the real-trained classifier."""
    figure = Figure(figsize=(1.5 + 0.4 * len(accuracy), 2.8))
    ax = figure.subplots()
    ax.bar([str(c) for c in accuracy.index], accuracy.to_numpy(), color=SYNTHETIC)
    ax.set_ylim(0, 1)
    ax.set_xlabel("class")
    ax.set_ylabel("accuracy on synthetic images")
    return to_data_uri(figure)


def image_grid(images, labels, classes, title, per_class=8):
    """Up to ``per_class`` images of each class, one row per class."""
    figure = Figure(figsize=(0.7 * per_class + 0.8, 0.7 * len(classes) + 0.5))
    axes = figure.subplots(len(classes), per_class, squeeze=False)
    for row, label in zip(axes, classes):
        chosen = images[labels == label][:per_class]
        for ax, image in zip(row, chosen):
            picture = image.transpose(1, 2, 0)
            ax.imshow(
                picture[..., 0] if picture.shape[-1] == 1 else picture[..., :3],
                cmap="gray",
                vmin=0,
                vmax=1,
            )
        for ax in row:
            ax.set_axis_off()
        row[0].text(
            -0.15, 0.5, str(label), transform=row[0].transAxes, ha="right", va="center"
        )
    figure.subplots_adjust(wspace=0.05, hspace=0.05)
    figure.suptitle(title)
    return to_data_uri(figure)
