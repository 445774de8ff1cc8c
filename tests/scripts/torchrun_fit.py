"""Run by tests/test_parallel.py under ``torchrun --nproc_per_node 2``.

Every rank fits generators on its own half of a table; after every optimiser
step the ranks compare their weights. Rank 0 writes the models and a summary
to the folder given as the first argument.
"""

import json
import os
import sys
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist
from sklearn.datasets import load_wine
from torch.optim.optimizer import register_optimizer_step_post_hook

from augment import TabularDiffusion, TabularGAN, TabularTransformer, TabularVAE


def main():
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    out = Path(sys.argv[1])

    X, y = load_wine(return_X_y=True, as_frame=True)
    X["hue"] = pd.cut(X["hue"], 3, labels=["low", "mid", "high"])
    if rank == 1:  # a category only one rank sees
        X["hue"] = X["hue"].cat.add_categories(["rare"])
        X.loc[1, "hue"] = "rare"
    X_rank, y_rank = X.iloc[rank::size], y.iloc[rank::size]

    steps = {"checked": 0, "differed": 0}

    def _weights(optimiser):
        groups = optimiser.param_groups
        return torch.cat([p.detach().reshape(-1) for g in groups for p in g["params"]])

    def compare(optimiser, args, kwargs):
        mine = _weights(optimiser)
        theirs = [torch.empty_like(mine) for _ in range(size)]
        dist.all_gather(theirs, mine)
        steps["checked"] += 1
        steps["differed"] += int(not all(torch.equal(mine, t) for t in theirs))

    register_optimizer_step_post_hook(compare)

    summary = {}
    models = {
        "gan": TabularGAN(epochs=3, batch_size=40, pac=4, random_state=0),
        "vae": TabularVAE(epochs=60, batch_size=32, random_state=None),
        "diffusion": TabularDiffusion(epochs=2, batch_size=32, random_state=0),
        "transformer": TabularTransformer(epochs=2, batch_size=32, random_state=0),
    }
    for name, gen in models.items():
        gen.fit(X_rank, y_rank)
        tensors = gen.module_.state_dict().values()
        state = torch.cat([t.reshape(-1).double() for t in tensors])
        states = [torch.empty_like(state) for _ in range(size)]
        dist.all_gather(states, state)
        every = [None] * size
        dist.all_gather_object(every, gen.sample(50, random_state=1)[0].to_json())
        gen.save(out / f"{name}.augment")
        summary[name] = {
            "same_state": all(torch.equal(state, s) for s in states),
            "same_samples": len(set(every)) == 1,
            "classes": gen.classes_.tolist(),
            "hue": list(gen.encoder_.columns_[list(X.columns).index("hue")].categories),
            "epochs": len(gen.history_),
        }
    summary["steps"] = steps
    # shards that disagree on a dtype: every rank raises, naming the column
    bad = X_rank.assign(hue=X_rank["hue"].astype(str)) if rank == 1 else X_rank
    try:
        TabularVAE(epochs=1).fit(bad, y_rank)
    except ValueError as exc:
        summary["bad_dtype"] = str(exc)
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # torch 2.13's gloo now and then aborts while the interpreter tears down
    # ("terminate called without an active exception", SIGABRT: about one
    # launch in fifteen here), after all the work above is done and written.
    # Skip that teardown; an exception in main() still exits non-zero.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
