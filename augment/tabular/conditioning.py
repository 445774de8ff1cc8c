"""Condition vectors over the discrete columns and the label, and
training-by-sampling.

A conditional table generator is told, for every row it makes, some discrete
values the row must have. The condition vector has one block per discrete
(categorical) column, one entry per slot of the encoder's one-hot for that
column, followed by a one-hot of the class label when fitted with classes. The
label is always given: the model is class-conditional, and sampling always
knows the class of every row it makes. Of the discrete columns, any subset may
be shown (hot) or hidden (all zeros).

Training-by-sampling decides what to condition on: a discrete column (the
label counts as one) is chosen uniformly, then one of its values with
probability proportional to the log of its frequency, then a real row that
has that value. Rare categories and minority classes are so seen far more
often than their frequency alone would allow, and the critic always compares
generated rows with real rows of the same condition. Each other discrete
value of the chosen row is also shown with a small probability, so that the
generator learns to honour several conditions at once.

Sampling without conditions mirrors that: a discrete column is chosen
uniformly and its value is drawn from its training frequency within the class
of the row (choosing the label shows nothing more), so that the rows follow
the training distribution.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ColumnCondition:
    """A requested value of a discrete column, located in the encoder's layout."""

    column: object  # name in the table (a position for array input)
    position: int  # index among the discrete columns
    slot: int  # the encoder slot that decodes to ``value`` (or the rare slot)
    value: object  # the training value asked for


@dataclass(frozen=True)
class RangeCondition:
    """A requested range of a numeric column, bounds included, within the
    training range (and on the column's rounding grid)."""

    column: object  # name in the table (a position for array input)
    low: float
    high: float


class Conditioning(nn.Module):
    """The condition vector's layout and the value frequencies it is drawn from.

    A module without parameters: its buffers move and pickle with the model.

    Parameters
    ----------
    spans : list of Span
        ``TableEncoder.spans_``; the ``"category"`` spans are the discrete columns.
    data : Tensor of shape (n_rows, n_features_out) or None
        The training rows in model space; None for empty counts (filled by
        loading saved ones).
    labels : LongTensor of shape (n_rows,) or None
        Class index of every training row.
    n_classes : int
        Number of classes (0 without labels).
    counts : Tensor of shape (n_discrete, max_width, max(n_classes, 1)) or None
        Frequencies of every value within every class to use instead of the
        ones of ``data`` (noisy ones, under differential privacy).

    Attributes
    ----------
    width : int
        Length of a condition vector.
    """

    def __init__(self, spans, data, labels, n_classes, counts=None):
        super().__init__()
        groups = [s for s in spans if s.role != "scalar"]
        discrete = [s for s in groups if s.role == "category"]
        widths = torch.tensor([s.width for s in discrete], dtype=torch.long)
        offsets = torch.cumsum(widths, 0) - widths
        self.n_discrete, self.n_classes = len(discrete), n_classes
        self.width = int(widths.sum()) + n_classes
        # the model-space columns of the discrete spans, in condition-vector order
        columns = [torch.arange(s.start, s.stop) for s in discrete]
        self.register_buffer("columns", torch.cat(columns or [torch.zeros(0)]).long())
        self.register_buffer("block", torch.repeat_interleave(widths))
        self.register_buffer("offsets", offsets)
        group_of = [groups.index(s) for s in discrete]  # among the one-hot groups
        self.register_buffer("groups", torch.tensor(group_of, dtype=torch.long))
        # training frequency of every value within every class, padded per
        # column: (n_discrete, max_width, max(n_classes, 1)); a summary, no rows
        if counts is None and data is None:  # empty, to load saved counts into
            data = torch.zeros((0, spans[-1].stop if spans else 0))
        if counts is None:
            counts = self._counts(data, labels, widths, max(n_classes, 1))
        self.register_buffer("counts", torch.as_tensor(counts, dtype=torch.float32))

    def _counts(self, data, labels, widths, n_cells):
        codes = self.codes_of(data).cpu()
        label = torch.zeros(len(codes), dtype=torch.long) if labels is None else labels
        max_width = max(widths.tolist(), default=1)
        counts = torch.zeros((self.n_discrete, max_width, n_cells))
        for j in range(self.n_discrete):  # a loop over columns, not rows
            cell = codes[:, j] * n_cells + label.cpu()
            block = torch.bincount(cell, minlength=int(widths[j]) * n_cells)
            counts[j, : widths[j]] = block.view(-1, n_cells).float()
        return counts

    # ------------------------------------------------------------ vectors
    def codes_of(self, rows):
        """Slot of every discrete column of model-space ``rows`` (exact one-hots,
        as the encoder makes them): ``(n, n_discrete)``."""
        # in blocks of rows: the one-hot columns of every row at once would copy
        # most of a large table (and ``nonzero`` holds two indices per value)
        chunk = 65_536
        if len(rows) > chunk:
            blocks = torch.split(rows, chunk)
            return torch.cat([self.codes_of(block) for block in blocks])
        hot = rows[:, self.columns].nonzero()[:, 1]  # row by row, one per block
        return (hot - self.offsets[self.block[hot]]).view(len(rows), self.n_discrete)

    def vector(self, codes, shown, labels):
        """Condition vectors: the ``shown`` values of ``codes`` hot, and the label.

        Parameters
        ----------
        codes : LongTensor of shape (n, n_discrete)
            Slot of each discrete column (anything where not shown).
        shown : BoolTensor of shape (n, n_discrete)
        labels : LongTensor of shape (n,) or None
        """
        n = len(codes)
        vector = torch.zeros((n, self.width), device=codes.device)
        row, column = shown.nonzero(as_tuple=True)
        vector[row, self.offsets[column] + codes[row, column]] = 1.0
        if labels is not None:
            vector[torch.arange(n, device=codes.device), labels - self.n_classes] = 1.0
        return vector

    def overwrite(self, rows, codes, shown):
        """Give the ``shown`` discrete columns of model-space ``rows`` exactly
        the one-hot of ``codes`` (in place), so that they decode to it."""
        if not self.n_discrete:
            return rows
        hot = self.vector(codes, shown, None)[:, : len(self.columns)]
        keep = shown[:, self.block]
        rows[:, self.columns] = torch.where(keep, hot, rows[:, self.columns])
        return rows

    def loss(self, log_probs, codes, shown):
        """Cross-entropy of the generated discrete columns against the shown
        conditions, summed over columns and averaged over rows.

        ``log_probs`` are the log-softmax of the layout's padded group logits,
        ``(n, n_groups, max_width)``.
        """
        if not self.n_discrete:
            return log_probs.new_zeros(())
        picked = log_probs[:, self.groups].gather(2, codes.unsqueeze(2)).squeeze(2)
        return -(picked * shown).sum() / len(codes)

    # --------------------------------------------------------------- draws
    def fixed(self, n, conditions, device):
        """``(codes, shown)`` for ``n`` rows that show exactly the asked
        ``conditions`` (a sequence of :class:`ColumnCondition`), nothing else."""
        codes = torch.zeros((n, self.n_discrete), dtype=torch.long, device=device)
        shown = torch.zeros((n, self.n_discrete), dtype=torch.bool, device=device)
        for condition in conditions:
            codes[:, condition.position] = condition.slot
            shown[:, condition.position] = True
        return codes, shown

    def draw(self, labels, n, generator, conditions=()):
        """Conditions to sample ``n`` rows with: ``(codes, shown)``.

        Parameters
        ----------
        labels : LongTensor of shape (n,) or None
        n : int
        generator : torch.Generator
        conditions : sequence of ColumnCondition
            Values asked for: every row shows exactly these. Without any, each
            row shows one discrete column, chosen uniformly (the label counts
            as one and shows nothing more), with a value drawn from its
            training frequency within the row's class, as in training.
        """
        codes, shown = self.fixed(n, conditions, generator.device)
        if conditions or not self.n_discrete:
            return codes, shown
        device = generator.device
        choices = self.n_discrete + (1 if self.n_classes else 0)
        column = torch.randint(choices, (n,), generator=generator, device=device)
        rows = (column < self.n_discrete).nonzero().squeeze(1)
        column = column[rows]
        if not len(rows):
            return codes, shown
        label = 0 if labels is None else labels[rows]
        probs = self.counts[column, :, label]  # (n_shown, max_width)
        value = torch.multinomial(probs, 1, generator=generator)
        codes[rows, column] = value.squeeze(1)
        shown[rows, column] = True
        return codes, shown

    def class_probs(self, conditions):
        """Probability of every class given the ``conditions`` (a sequence of
        :class:`ColumnCondition`): exact for one value (its training frequency
        per class), naive Bayes for several; the class prior when the values
        were never seen together with any class."""
        per_class = self.counts[0].sum(0).double()  # rows of each class
        probs = per_class / per_class.sum()
        for condition in conditions:
            count = self.counts[condition.position, condition.slot].double()
            probs = probs * count / per_class
        if probs.sum() == 0:
            probs = per_class
        return (probs / probs.sum()).cpu().numpy()


class TrainingSampler:
    """Training-by-sampling over the discrete columns and the label.

    Training-only: it indexes the training rows, and is not kept in a fitted
    model. Its memory is a few integers per row and discrete column, whatever
    the number of distinct values.

    Parameters
    ----------
    codes : LongTensor of shape (n_rows, n_discrete)
        Slot of every training row in every discrete column.
    widths : sequence of int
        Number of slots of each discrete column.
    labels : LongTensor of shape (n_rows,) or None
    n_classes : int
    reveal : float, default=0.1
        Probability with which each other discrete value of a sampled row is
        shown too.
    """

    def __init__(self, codes, widths, labels, n_classes, reveal=0.1):
        device = codes.device
        self.codes, self.labels, self.reveal = codes, labels, reveal
        n_rows, self.n_discrete = codes.shape
        if labels is not None:  # the label is a discrete column here
            codes = torch.cat([codes, labels[:, None]], dim=1)
            widths = [*widths, n_classes]
        widths = torch.as_tensor(widths, dtype=torch.long, device=device)
        self.offsets = torch.cumsum(widths, 0) - widths
        self.n_columns = len(widths)
        # every (column, value) pair gets an id; the rows having it are a
        # contiguous run of `rows_by_value`
        ids = (codes + self.offsets).T.reshape(-1)
        counts = torch.bincount(ids, minlength=int(widths.sum()))
        self.rows_by_value = torch.argsort(ids, stable=True) % max(n_rows, 1)
        self.run_start = torch.cumsum(counts, 0) - counts
        self.run_length = counts
        # log-frequency choice of a value within a column, padded per column
        log_freq = torch.log1p(counts.double())
        max_width = max(widths.tolist(), default=1)
        padded = torch.zeros((self.n_columns, max_width), device=device)
        for j in range(self.n_columns):  # a loop over columns, not rows
            block = log_freq[self.offsets[j] : self.offsets[j] + widths[j]]
            padded[j, : widths[j]] = (block / block.sum()).float()
        self.value_probs = padded

    def sample(self, n, generator):
        """Draw ``n`` training conditions and a real row matching each.

        Returns
        -------
        rows : LongTensor of shape (n,)
            Indices of training rows.
        codes : LongTensor of shape (n, n_discrete)
            Their discrete values.
        shown : BoolTensor of shape (n, n_discrete)
            Which of them the condition shows (the chosen one, and each other
            with probability ``reveal``).
        """
        random = dict(generator=generator, device=generator.device)
        if not self.n_columns:  # nothing discrete: plain uniform rows
            rows = torch.randint(len(self.codes), (n,), **random)
            return rows, self.codes[rows], self.codes[rows].bool()
        column = torch.randint(self.n_columns, (n,), **random)
        value = torch.multinomial(self.value_probs[column], 1, generator=generator)
        run = self.offsets[column] + value.squeeze(1)
        pick = torch.rand(n, **random) * self.run_length[run]
        pick = pick.long().clamp_max(self.run_length[run] - 1)  # float rounding
        rows = self.rows_by_value[self.run_start[run] + pick]
        codes = self.codes[rows]
        shown = torch.rand(codes.shape, **random) < self.reveal
        chosen = (column < self.n_discrete).nonzero().squeeze(1)
        shown[chosen, column[chosen]] = True
        return rows, codes, shown
