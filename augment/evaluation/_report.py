"""The evaluation report: tidy scores, a text summary and a self-contained HTML page."""

import numpy as np
import pandas as pd

from . import _data

# name: (group, ideal value, what it measures), in the order the report shows them
METRICS = {
    "fidelity": ("fidelity", "1", "overall closeness of the distributions"),
    "column_shapes": ("fidelity", "1", "per column: 1 - KS or 1 - total variation"),
    "column_pairs": ("fidelity", "1", "trends of the related column pairs"),
    "detection": (
        "fidelity",
        "1",
        "1 - max(0, 2 AUC - 1) of a classifier telling real from synthetic",
    ),
    "rule_violations": (
        "fidelity",
        "0",
        "synthetic rows breaking a rule found in the real table",
    ),
    "class_accuracy": ("fidelity", "1", "per class: recognised by a real-trained CNN"),
    "frechet_distance": ("fidelity", "0", "real vs synthetic in that CNN's features"),
    "frechet_distance_holdout": ("fidelity", "", "real vs holdout, for scale"),
    "trtr": ("utility", "", "train on real, test on holdout"),
    "tstr": ("utility", "~ trtr", "train on synthetic, test on holdout"),
    "augmentation_lift": ("utility", "> 0", "train on real + synthetic, minus trtr"),
    "exact_copy_share": ("privacy", "0", "synthetic rows equal to a training row"),
    "dcr_share": ("privacy", "0.5", "synthetic rows nearer training than holdout"),
    "dcr_median": (
        "privacy",
        "~ holdout",
        "median distance to the closest training row",
    ),
    "dcr_median_holdout": ("privacy", "", "the same for holdout rows, for scale"),
    "nndr": ("privacy", "not ~ 0", "median ratio of 1st to 2nd closest distance"),
    "mia_auc": ("privacy", "0.5", "ROC AUC of a distance-based membership attack"),
}

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>Synthetic data evaluation</title>
<style>
body { font-family: system-ui, sans-serif; color: #222; max-width: 1280px;
       margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: .3em .9em; border-bottom: 1px solid #ddd; text-align: left; }
td.score { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: grid; gap: 1em;
        grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); }
figure { margin: 0 0 1em 0; }
img { max-width: 100%; height: auto; }
figcaption, .note { color: #555; font-size: .9em; }
</style>
</head>
<body>
<h1>Synthetic data evaluation</h1>
<p>{{ description }}</p>
<h2>Summary</h2>
<table id="summary">
<tr><th>group</th><th>metric</th><th>score</th><th>ideal</th>
<th>what it measures</th></tr>
{% for row in summary %}<tr><td>{{ row.group }}</td><td>{{ row.metric }}</td>
<td class="score">{{ row.score }}</td><td>{{ row.ideal }}</td>
<td>{{ row.meaning }}</td></tr>
{% endfor %}</table>
<ul class="note">{% for note in notes %}<li>{{ note }}</li>{% endfor %}</ul>
{% for section in sections %}<section>
<h2>{{ section.title }}</h2>
{% if section.text %}<p class="note">{{ section.text }}</p>{% endif %}
{% if section.rows %}<table>
<tr>{% for name in section.header %}<th>{{ name }}</th>{% endfor %}</tr>
{% for row in section.rows %}<tr><td>{{ row[0] }}</td>
<td class="score">{{ row[1] }}</td></tr>
{% endfor %}</table>{% endif %}
<div class="{{ 'grid' if section.grid else 'figures' }}">
{% for figure in section.figures %}<figure>
<img src="{{ figure.src }}" alt="{{ figure.caption }}">
<figcaption>{{ figure.caption }}</figcaption></figure>
{% endfor %}</div>
</section>
{% endfor %}</body>
</html>
"""


class EvaluationReport:
    """How close, how useful and how private synthetic data is, against real data.

    Returned by :func:`augment.evaluate`, not built by hand.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per figure, with columns ``group`` (``"fidelity"``,
        ``"utility"`` or ``"privacy"``), ``metric``, ``column`` and
        ``column_2`` (the column, column pair or image class a per-column
        figure is about; missing for the headline figures) and ``score``.
    details : dict of str to pandas.DataFrame
        ``"column_pairs"`` (tables): every column pair with its metric,
        score, real and synthetic correlation (or the real Cramer's V) and
        whether it is related enough to count in ``column_pairs``.
    info : dict
        What was evaluated and how: row counts, target, task, scoring,
        subsample size, random_state, elapsed seconds and notes on the
        figures that could not be computed.
    """

    def __init__(self, scores, details, info, plot_data):
        self.scores = scores
        self.details = details
        self.info = info
        self._plot_data = plot_data

    def __repr__(self):
        n, unit = self.info["n_rows"], self._unit()
        return (
            f"<EvaluationReport: {n['synthetic']:,} synthetic {unit} against "
            f"{n['real']:,} real, {len(self.scores)} figures>"
        )

    def _unit(self):
        return "rows" if self.info["data"] == "table" else "images"

    def _headline(self):
        """The figures that are about the whole data set, with their ideals."""
        rows = self.scores[self.scores["column"].isna()].copy()
        rows["ideal"] = rows["metric"].map(lambda m: METRICS[m][1])
        rows["meaning"] = rows["metric"].map(lambda m: METRICS[m][2])
        return rows[["group", "metric", "score", "ideal", "meaning"]]

    def _description(self):
        info, n = self.info, self.info["n_rows"]
        sizes = ", ".join(
            f"{name} {count:,} {self._unit()}" for name, count in n.items() if count
        )
        text = f"Compared {sizes}."
        if info["target"] is not None:
            text += f" Target {info['target']!r}: {info['task']}."
        if "trtr" in self.scores["metric"].to_numpy():
            text += f" Utility scored by {info['scoring']}."
        return text + f" Evaluated in {info['seconds']:.1f} s."

    def summary(self):
        """The headline figures and the notes, as text.

        Returns
        -------
        str
            A short table (one line per figure with its ideal value) and the
            notes on subsampling and skipped figures; ``print`` it.
        """
        table = self._headline().drop(columns="meaning")
        table["score"] = table["score"].map("{:.3f}".format)
        lines = [self._description(), "", table.to_string(index=False), ""]
        return "\n".join(lines + [f"- {note}" for note in self.info["notes"]])

    def to_html(self, path=None):
        """Write the report as one self-contained HTML page.

        The page holds the summary table and the figures (PNG images embedded
        in the file), so it opens in any browser with no network: real vs
        synthetic distributions of every column, the correlation matrices and
        their difference, column pair similarities, distances to the closest
        training row and, for images, samples of every class.

        Parameters
        ----------
        path : str or path-like, default=None
            Where to write the page. None returns it as a string.

        Returns
        -------
        str or None
            The HTML when ``path`` is None.
        """
        try:
            import jinja2
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "The HTML report needs matplotlib and jinja2: "
                "pip install augment-learn[report]"
            ) from exc
        from . import _plots

        summary = self._headline()
        summary["score"] = summary["score"].map("{:.3f}".format)
        sections = (
            _table_sections(self, _plots)
            if self.info["data"] == "table"
            else _image_sections(self, _plots)
        )
        if "distances" in self._plot_data:
            sections.append(
                {
                    "title": "Privacy: distance to the closest training row",
                    "text": "Synthetic rows that lie much closer to the training "
                    "rows than new (holdout) rows do were memorised, not generated.",
                    "figures": [
                        {
                            "src": _plots.distances(self._plot_data["distances"]),
                            "caption": "distance to the closest training row",
                        }
                    ],
                }
            )
        environment = jinja2.Environment(autoescape=True)
        html = environment.from_string(TEMPLATE).render(
            description=self._description(),
            summary=summary.to_dict("records"),
            notes=self.info["notes"],
            sections=sections,
        )
        if path is None:
            return html
        with open(path, "w", encoding="utf-8") as file:
            file.write(html)
        return None


def _table_sections(report, plots):
    data = report._plot_data
    real, synthetic, kinds = data["real"], data["synthetic"], data["kinds"]
    shapes = report.scores.query("metric == 'column_shapes' and column.notna()")
    shapes = dict(zip(shapes["column"], shapes["score"]))
    name = {
        "categorical": "TV complement",
        "numeric": "KS complement",
        "datetime": "KS complement",
    }
    columns = [
        {
            "src": plots.column_distribution(real[c], synthetic[c], kind, str(c)),
            "caption": f"{c}: {name[kind]} {shapes[c]:.3f}",
        }
        for c, kind in kinds.items()
    ]
    pair_figures = [
        {
            "src": plots.pair_scores(report.details["column_pairs"], list(kinds)),
            "caption": "trend similarity of every column pair",
        }
    ]
    continuous = [c for c, kind in kinds.items() if kind != "categorical"]
    if len(continuous) > 1:
        real_numbers, synthetic_numbers = (
            pd.DataFrame({c: _data.as_float(frame[c], kinds[c]) for c in continuous})
            for frame in (real, synthetic)
        )
        pair_figures.insert(
            0,
            {
                "src": plots.correlations(real_numbers, synthetic_numbers),
                "caption": "Pearson correlations of the numeric columns",
            },
        )
    rules = report.scores.query("metric == 'rule_violations' and column.notna()")
    rules_section = {
        "title": "Rules between columns",
        "text": "Rules that hold on every real row, found in the real table, "
        "and the share of synthetic rows that break each."
        if len(rules)
        else "No rule between columns was found in the real table.",
        "header": ["rule", "synthetic rows breaking it"],
        "rows": [(r, f"{s:.3f}") for r, s in zip(rules["column"], rules["score"])],
        "figures": [],
    }
    return [
        rules_section,
        {
            "title": "Column distributions",
            "grid": True,
            "figures": columns,
            "text": f"Real and synthetic values of each column ({data['n_plotted']}).",
        },
        {"title": "Column pairs", "figures": pair_figures},
    ]


def _image_sections(report, plots):
    data = report._plot_data
    classes = data["classes"]
    accuracy = report.scores.query("metric == 'class_accuracy'").set_index("column")[
        "score"
    ]
    return [
        {
            "title": "Samples",
            "grid": True,
            "figures": [
                {
                    "src": plots.image_grid(*data[name], classes, name),
                    "caption": f"{name} images",
                }
                for name in ("real", "synthetic")
            ],
            "text": f"Up to 8 images of each of {len(classes)} classes.",
        },
        {
            "title": "Recognisability",
            "figures": [
                {
                    "src": plots.class_accuracy(accuracy),
                    "caption": "accuracy of a real-trained CNN on synthetic images",
                }
            ],
        },
    ]


def scores_frame(rows):
    """The tidy ``scores`` frame from ``(metric, column, column_2, score)`` rows."""
    # object columns keep class labels as given (no NaN-driven cast to float)
    columns = ["metric", "column", "column_2", "score"]
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    frame.insert(0, "group", frame["metric"].map(lambda m: METRICS[m][0]))
    order = frame["metric"].map(list(METRICS).index)
    frame = frame.iloc[np.argsort(order.to_numpy(), kind="stable")]
    frame["score"] = frame["score"].astype(float)
    return frame.reset_index(drop=True)
