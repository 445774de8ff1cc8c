"""Data-parallel training when a ``torch.distributed`` process group is up.

Under ``torchrun`` or Ray Train every process (rank) calls ``fit`` on its own
part of the rows. The model is the same on every rank: the seed of the fit is
rank 0's, the encoder, rules and class list are fitted once on a bounded
sample gathered from all ranks (:mod:`augment.tabular.reservoir`),
frequencies are summed over the ranks, and
every optimiser step averages the gradients of all ranks
(:func:`average_gradients`) before it updates, so that the weights stay the
same on every rank.

Gradients are averaged explicitly rather than through
``torch.nn.parallel.DistributedDataParallel``: DDP does not support double
backward (its all-reduce hooks are unknown to autograd, and a module called
several times per step, as the GAN's critic is for its scores, its gradient
penalty and the generator's loss, trips its once-per-step bookkeeping;
pytorch/pytorch#63812, #63929, #47562). One all-reduce of the flattened
gradients after ``backward`` is what DDP computes, and works for every loss.

Without a process group (or with a group of one) every function here is the
identity and nothing is communicated.
"""

import numpy as np
import torch


def _group():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def world():
    """``(rank, world_size)`` of the process group; ``(0, 1)`` without one."""
    dist = _group()
    if dist is None:
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def active():
    """Whether this process trains together with others."""
    return world()[1] > 1


def _device_of(tensor):
    """Where a collective runs: NCCL wants CUDA tensors, gloo CPU ones."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return tensor.device if tensor.device.type == "cpu" else torch.device("cpu")


def _all_reduce(tensor, op="sum"):
    """All-reduce ``tensor`` in place (on the backend's device)."""
    dist = _group()
    where = _device_of(tensor)
    moved = tensor.to(where)
    dist.all_reduce(moved, op=getattr(dist.ReduceOp, op.upper()))
    if moved is not tensor:
        tensor.copy_(moved)
    return tensor


def minimum(value):
    """The smallest of every rank's integer ``value``."""
    if not active():
        return value
    return int(_all_reduce(torch.tensor(int(value)), "min"))


def total(value):
    """The sum of every rank's integer ``value``."""
    if not active():
        return value
    return int(_all_reduce(torch.tensor(int(value), dtype=torch.long)))


def sum_(tensor):
    """Sum ``tensor`` over the ranks, in place."""
    return _all_reduce(tensor) if active() else tensor


def broadcast(obj):
    """Rank 0's ``obj`` (any picklable object), on every rank."""
    if not active():
        return obj
    box = [obj]
    _group().broadcast_object_list(box, src=0)
    return box[0]


def gather(obj):
    """Every rank's ``obj``, in rank order, on every rank."""
    if not active():
        return [obj]
    dist = _group()
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def once(fit):
    """``fit()`` run on rank 0 only, its result broadcast to every rank (so
    that every rank holds the very same fitted object)."""
    if not active():
        return fit()
    return broadcast(fit() if world()[0] == 0 else None)


def barrier():
    if active():
        _group().barrier()


def rank_seed(seed):
    """The seed of this rank's training randomness (shuffling, noise): the
    fit's own seed on rank 0 (and in a single process), a seed of its own on
    every other rank, so that ranks draw different batches and noise."""
    rank = world()[0]
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def average_gradients(parameters):
    """Replace every gradient by its mean over the ranks (one all-reduce of
    the gradients flattened together). A parameter without a gradient counts
    as a zero gradient, so that every rank sends the same shapes."""
    if not active():
        return
    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        return
    grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in parameters]
    flat = _all_reduce(torch.cat([g.reshape(-1) for g in grads]))
    flat /= world()[1]
    offset = 0
    for p, g in zip(parameters, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(g).to(g.dtype)
        offset += n


def broadcast_state(modules):
    """Rank 0's parameters and buffers of ``modules``, on every rank: the
    start of training (weights drawn from the same seed already; buffers
    such as a scale measured on the data may be each rank's own)."""
    if not active():
        return
    dist = _group()
    for module in modules:
        for tensor in module.state_dict().values():
            where = _device_of(tensor)
            moved = tensor.to(where)
            dist.broadcast(moved, src=0)
            if moved is not tensor:
                tensor.copy_(moved)


def average_buffers(modules):
    """Average the floating-point buffers of ``modules`` (batch norm's
    running statistics, each rank's own) over the ranks, so that every rank
    samples alike; the parameters are the same on every rank already."""
    if not active():
        return
    for module in modules:
        for buffer in module.buffers():
            if buffer.is_floating_point():
                _all_reduce(buffer)
                buffer /= world()[1]
