"""The encoder's spans as index tensors, so that models treat all columns at once.

A model's raw output has one entry per model-space column. Scalars and one-hot
groups need different activations and losses; instead of a Python loop over
columns per batch, the groups are gathered into one padded
``(batch, n_groups, max_width)`` tensor (padding at ``-inf``), on which softmax
runs in a single call, or, where padding would cost most (cross-entropy and
sampling), taken side by side with a column-to-group membership matrix.
"""

import torch
from torch import nn


class SpanLayout(nn.Module):
    """Index tensors of the scalar and one-hot spans of a :class:`TableEncoder`.

    A module without parameters: its index tensors are buffers, so they move
    with the model it belongs to (``model.to(device)``) and pickle with it.

    Parameters
    ----------
    spans : list of Span
        ``TableEncoder.spans_``.
    """

    def __init__(self, spans):
        super().__init__()
        self.width = spans[-1].stop if spans else 0
        scalars = [s.start for s in spans if s.role == "scalar"]
        groups = [s for s in spans if s.role != "scalar"]
        max_width = max((g.width for g in groups), default=0)
        offsets = torch.arange(max_width)
        starts = torch.tensor([g.start for g in groups], dtype=torch.long)
        widths = torch.tensor([g.width for g in groups], dtype=torch.long)
        mask = offsets[None, :] < widths[:, None]  # (G, W)
        self.register_buffer("scalar_index", torch.tensor(scalars, dtype=torch.long))
        self.register_buffer("group_mask", mask)
        # padding points at the group's first column; it is masked everywhere
        index = starts[:, None] + offsets[None, :] * mask
        self.register_buffer("group_index", index)
        # the same layout as a (columns of groups) x (groups) membership matrix:
        # per-group sums become one matrix product
        columns, group = index[mask], mask.nonzero()[:, 0]
        membership = torch.zeros((len(columns), len(groups)))
        membership[torch.arange(len(columns)), group] = 1.0
        self.register_buffer("group_columns", columns)
        self.register_buffer("column_group", group)
        self.register_buffer("membership", membership)

    def group_logits(self, raw):
        """Raw outputs of the one-hot groups as ``(batch, G, W)``, padding ``-inf``."""
        logits = raw[:, self.group_index]
        return logits.masked_fill(~self.group_mask, float("-inf"))

    def scatter_groups(self, values, out):
        """Write per-group ``(batch, G, W)`` values into model-space ``out``."""
        out[:, self.group_index[self.group_mask]] = values[:, self.group_mask]
        return out

    def hot_slots(self, data):
        """Slot of the hot entry of every group in its group: ``(batch, G)``.

        Computed once for the training data, then indexed per batch: one
        ``argmax`` per group over its span of columns (a view), as the padded
        ``(rows, G, W)`` logits of a whole table would take ``G * W`` floats
        per row (130 MB for 10,000 rows of nycflights13, whose 105
        destinations pad every group).
        """
        starts = self.group_index[:, 0].tolist()
        widths = self.group_mask.sum(dim=1).tolist()
        slots = [data[:, a : a + w].argmax(dim=1) for a, w in zip(starts, widths)]
        if not slots:
            return torch.zeros((len(data), 0), dtype=torch.long, device=data.device)
        return torch.stack(slots, dim=1)

    def hot_columns(self, data):
        """Model-space column of the hot entry of every group: ``(batch, G)``,
        computed as :meth:`hot_slots`."""
        hot = self.hot_slots(data)
        groups = torch.arange(hot.shape[1], device=hot.device)
        return self.group_index[groups[None, :], hot]

    def cross_entropy(self, raw, hot):
        """Cross-entropy of every group's logits against its hot column,
        summed over groups and averaged over rows."""
        if self.membership.shape[1] == 0:
            return raw.new_zeros(())
        # log-sum-exp per group as a matrix product, shifted by each group's
        # own maximum (a constant for the gradient) so that nothing overflows
        grouped = raw[:, self.group_columns]
        with torch.no_grad():
            shift = self._group_max(grouped)
        grouped = grouped - shift[:, self.column_group]
        log_norm = torch.log(grouped.exp() @ self.membership) + shift
        return (log_norm.sum() - raw.gather(1, hot).sum()) / raw.shape[0]

    def _group_max(self, grouped):
        """Each group's largest entry, ``(batch, G)``, from the groups' columns
        side by side, ``(batch, columns of groups)``."""
        n, n_groups = grouped.shape[0], self.group_mask.shape[0]
        shift = grouped.new_full((n, n_groups), float("-inf"))
        index = self.column_group.expand(n, -1)
        return shift.scatter_reduce_(1, index, grouped, "amax")

    def sample_groups(self, raw, generator, out):
        """Draw one entry per group from softmax(raw) into ``out``.

        By inversion: one uniform per group against the cumulative weights,
        cheaper than Gumbel-max's noise on every entry. It runs over the
        groups' columns side by side rather than the padded tensor: with one
        wide group (92 airports) among narrow ones, padding is most of it.
        """
        n, n_groups = raw.shape[0], self.group_mask.shape[0]
        grouped = raw[:, self.group_columns]  # (batch, columns of groups)
        weights = (grouped - self._group_max(grouped)[:, self.column_group]).exp()
        cumulative = weights.cumsum(dim=1)  # across the groups, in order
        widths = self.group_mask.sum(dim=1)
        first = widths.cumsum(0) - widths  # each group's first column
        before = cumulative[:, first] - weights[:, first]
        total = cumulative[:, first + widths - 1] - before
        uniform = torch.rand((n, n_groups), generator=generator, device=raw.device)
        target = before + uniform * total
        # the number of the group's cumulative weights below its target
        below = (cumulative < target[:, self.column_group]).to(self.membership.dtype)
        choice = (below @ self.membership).long()
        choice = torch.minimum(choice, widths - 1)  # rounding of the last sum
        # the one-hots written in place: zeros over the groups, a one per group
        groups = torch.arange(n_groups, device=raw.device)
        out[:, self.group_columns] = 0
        return out.scatter_(1, self.group_index[groups[None, :], choice], 1.0)

    def start_groups(self, bias, mean):
        """Set the entries of a network's output ``bias`` that feed the
        one-hot groups to the log-frequencies ``log(mean)`` (centred per
        group), so that its groups start at the marginals whose model-space
        column means are ``mean`` (noisy ones, under differential privacy).
        The scalars' entries are left as they are."""
        mean = torch.as_tensor(mean, dtype=bias.dtype, device=bias.device)
        mask = self.group_mask
        logits = torch.log(mean[self.group_index].clamp_min(1e-3))  # (G, W)
        centre = (logits * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
        with torch.no_grad():
            bias[self.group_index[mask]] = (logits - centre)[mask]

    def log_probs(self, raw):
        """Log-softmax of every group: ``(batch, G, W)``, ``-inf`` on padding."""
        return _over_groups(torch.log_softmax, self.group_logits(raw))

    def gumbel_softmax(self, raw, generator, tau):
        """Relaxed one-hot draws of every group, differentiable in ``raw``:
        ``(batch, G, W)``, zero on padding. A local ``generator`` drives the
        noise (``torch.nn.functional.gumbel_softmax`` takes none)."""
        logits = self.group_logits(raw)
        return _over_groups(torch.softmax, (logits + _gumbel(logits, generator)) / tau)


def _over_groups(softmax, logits):
    # over a transposed view: torch's CPU kernel along a short last dimension
    # is several times slower than along an inner one
    return softmax(logits.transpose(1, 2), dim=1).transpose(1, 2)


def _gumbel(like, generator):
    uniform = torch.rand(like.shape, generator=generator, device=like.device)
    return -torch.log(-torch.log(uniform.clamp_min(1e-20)))
