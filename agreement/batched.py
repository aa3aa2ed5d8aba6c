"""Batched mode: the K models trained in one process as one vectorised computation.

Small networks (LeNet5 on 28 x 28 images) leave a GPU mostly idle when trained one after
another. Here the K networks' parameters and BatchNorm buffers are stacked
(``torch.func.stack_module_state``) and one ``torch.vmap``-ed ``functional_call`` runs all
of them at once: each model still sees its own shuffling and crops (the same as in the
sequential mode, seeded by its model seed and the epoch), its own initialisation, and its
own loss; the total loss is the sum of the K per-model mean losses, so every model's
gradient is the gradient of its own loss, and the optimiser (SGD or Adam, elementwise) acts
on every slice as K separate optimisers would.

The log is the same as in the sequential mode, with the same files and checkpoints (each
model's checkpoint holds its own parameters and optimiser state in the sequential
format). The logs agree in meaning, not bit for bit: batched kernels round differently,
and dropout (VGG16 at 224) draws its masks from one generator for all models.

Resume: the models of a batched run advance together; an epoch is written for all models
(logs and checkpoints) before any is committed, and the previous checkpoints are deleted
only after all are committed, so after a kill the group restarts from the oldest finished
epoch, re-doing the few epochs that some models had already committed.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from agreement import runlog as rl
from agreement._epoch import (
    CheckpointError,
    Context,
    Scorer,
    autocast,
    build,
    commit,
    epoch_seed,
    load_checkpoint,
    logit_buffers,
    lr_at,
    make_optimizer,
    mark_failed,
    metrics_row,
    nonfinite_message,
    pred_buffer,
    resume_point,
    status_record,
    to_device,
    write_epoch,
)
from agreement.data import SplitData, Transform, batches


def train_batched(ctx: Context, indices: list[int], seeds: list[int], keep: bool) -> None:
    """Train the models ``indices`` together; see the module docstring."""
    p, run_dir = ctx.p, ctx.run_dir
    if ctx.amp == "fp16":
        raise ValueError("batched mode supports amp='none' or 'bf16', not 'fp16'")
    group = []
    for k in indices:
        done = resume_point(run_dir, k, p.epochs, keep, ctx.say)
        if done is not None:
            group.append((k, done))
    if not group:
        return
    start = min(done for _, done in group)
    nets, opts = [], []
    for k, done in group:
        net, opt = build(ctx, seeds[k])
        if start > 0:
            path = rl.checkpoint_path(run_dir, k, start)
            if done > start and not path.exists():
                raise CheckpointError(
                    f"batched mode trains the models together from epoch {start + 1}, but model "
                    f"{k} has finished epoch {done} and its epoch-{start} checkpoint is gone; "
                    "train without --batched until the models are at the same epoch"
                )
            state = load_checkpoint(path, ctx.dev)
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            ctx.say(f"model {k}: resuming after epoch {start}")
        nets.append(net)
        opts.append(opt)
    _Group(ctx, [k for k, _ in group], [seeds[k] for k, _ in group], nets, opts).run(start, keep)


class _Group:
    """K stacked models, their stacked optimiser, and the vmapped forward."""

    def __init__(self, ctx, ks, seeds, nets, opts):
        self.ctx, self.ks, self.seeds = ctx, ks, seeds
        self.params, self.buffers = stack_module_state(nets)
        self.names = list(self.params)
        self.base = copy.deepcopy(nets[0]).to("meta")
        self.opt = _stacked_optimizer(ctx, opts, list(self.params.values()))
        self.alive = [True] * len(ks)

    def forward(self, x: torch.Tensor, shared_input: bool) -> torch.Tensor:
        def f(params, buffers, xx):
            return functional_call(self.base, (params, buffers), (xx,))

        in_dims = (0, 0, None if shared_input else 0)
        return torch.vmap(f, in_dims=in_dims, randomness="different")(self.params, self.buffers, x)

    def model_state(self, i: int) -> dict[str, torch.Tensor]:
        state = {n: t[i].detach().clone() for n, t in self.params.items()}
        state.update({n: t[i].detach().clone() for n, t in self.buffers.items()})
        return state

    def optimizer_state(self, i: int) -> dict[str, Any]:
        sd = self.opt.state_dict()
        k = len(self.ks)
        per = {}
        for idx, st in sd["state"].items():
            per[idx] = {
                key: (v[i].clone() if torch.is_tensor(v) and v.ndim > 0 and v.shape[0] == k else v)
                for key, v in st.items()
            }
        return {"state": per, "param_groups": copy.deepcopy(sd["param_groups"])}

    def run(self, start: int, keep: bool) -> None:
        ctx, p = self.ctx, self.ctx.p
        scorer = Scorer(ctx.data.multilabel)
        transform = Transform(p)
        tr, te = ctx.data.train, ctx.data.test
        y_train, y_test = scorer.targets(tr, ctx.dev), scorer.targets(te, ctx.dev)
        steps = math.ceil(len(tr) / p.batch_size)
        kk = len(self.ks)
        for k in self.ks:
            rl.write_json(rl.status_path(ctx.run_dir, k), status_record("running", start))
        ctx.add_steps(steps * (p.epochs - start))
        models = ",".join(map(str, self.ks))
        for epoch in range(start + 1, p.epochs + 1):
            t0 = time.perf_counter()
            torch.manual_seed(epoch_seed(self.seeds[0], epoch))
            self.base.train()
            n = len(tr)
            correct = [torch.zeros(n, dtype=torch.bool, device=ctx.dev) for _ in range(kk)]
            pred = [pred_buffer(n, ctx.data, ctx.dev) for _ in range(kk)]
            dyn = [logit_buffers(ctx, n) for _ in range(kk)]
            loss_sum = torch.zeros(kk, dtype=torch.float64, device=ctx.dev)
            alive = torch.tensor(self.alive, device=ctx.dev)
            loaders = [
                batches(tr, transform, batch_size=p.batch_size, train=True, seed=s, epoch=epoch,
                        num_workers=ctx.num_workers)
                for s in self.seeds
            ]  # fmt: skip
            first_lr = None
            ctx.stage(f"models {models} (batched) epoch {epoch}/{p.epochs}", steps)
            for i, items in enumerate(zip(*loaders, strict=True)):
                lr = lr_at(p, epoch - 1, i, steps)
                first_lr = lr if first_lr is None else first_lr
                for g in self.opt.param_groups:
                    g["lr"] = lr
                x = to_device(torch.stack([x for x, _ in items]), ctx)
                pos = torch.stack([q for _, q in items]).to(ctx.dev)
                y = y_train[pos]
                with autocast(ctx):
                    out = self.forward(x, shared_input=False)
                losses = _per_model_loss(scorer, out.float(), y)
                c, pr = scorer.score(out.detach().flatten(0, 1), y.flatten(0, 1))
                c, pr = c.view(kk, -1), pr.view(kk, -1, *pr.shape[1:])
                for j in range(kk):
                    correct[j][pos[j]], pred[j][pos[j]] = c[j], pr[j]
                    if dyn[j] is not None:
                        dyn[j].update(pos[j], out[j].detach(), y[j])
                loss_sum += losses.detach().double() * pos.shape[1]
                self.opt.zero_grad(set_to_none=True)
                # stopped models get no gradient, so their NaNs cannot spread to the others
                torch.where(alive, losses, torch.zeros_like(losses)).sum().backward()
                self.opt.step()
                ctx.step()
            ctx.end_stage()
            train_loss = (loss_sum / n).tolist()
            for j, k in enumerate(self.ks):
                if self.alive[j] and not math.isfinite(train_loss[j]):
                    self.alive[j] = False
                    mark_failed(ctx, k, epoch - 1, nonfinite_message(k, train_loss[j], epoch))
            if not any(self.alive):
                return
            if ctx.settings["train_eval_pass"]:
                dyn = [logit_buffers(ctx, n) for _ in range(kk)]
                correct, pred, tr_loss = self.evaluate(tr, y_train, scorer, transform, dyn)
                train_loss = tr_loss
            te_dyn = [logit_buffers(ctx, len(te)) for _ in range(kk)]
            te_correct, te_pred, test_loss = self.evaluate(te, y_test, scorer, transform, te_dyn)
            rows = {}
            for j, k in enumerate(self.ks):
                if not self.alive[j]:
                    continue
                ckpt = {
                    "model": self.model_state(j),
                    "optimizer": self.optimizer_state(j),
                    "epoch": epoch,
                }
                write_epoch(
                    ctx, k, epoch, (correct[j], pred[j], dyn[j]),
                    (te_correct[j], te_pred[j], te_dyn[j]), ckpt,
                )  # fmt: skip
                rows[k] = metrics_row(
                    epoch, first_lr or p.lr, train_loss[j], correct[j], test_loss[j],
                    te_correct[j], t0,
                )  # fmt: skip
            for k, row in rows.items():
                commit(ctx, k, row, delete_previous=False)
            if not keep:
                for k in rows:
                    rl.prune_checkpoints(ctx.run_dir, k, epoch)

    @torch.no_grad()
    def evaluate(
        self,
        split: SplitData,
        y_all: torch.Tensor,
        scorer: Scorer,
        transform: Transform,
        dyn: list | None = None,
    ):
        ctx = self.ctx
        self.base.eval()
        kk, n = len(self.ks), len(split)
        correct = [torch.zeros(n, dtype=torch.bool, device=ctx.dev) for _ in range(kk)]
        pred = [pred_buffer(n, ctx.data, ctx.dev) for _ in range(kk)]
        loss_sum = torch.zeros(kk, dtype=torch.float64, device=ctx.dev)
        for x, pos in batches(split, transform, batch_size=ctx.p.batch_size, train=False, seed=0,
                              epoch=0, num_workers=ctx.num_workers):  # fmt: skip
            x, pos = to_device(x, ctx), pos.to(ctx.dev)
            with autocast(ctx):
                out = self.forward(x, shared_input=True)
            y = y_all[pos]
            yk = y.unsqueeze(0).expand(kk, *y.shape)
            loss_sum += _per_model_loss(scorer, out.float(), yk).double() * len(pos)
            for j in range(kk):
                c, pr = scorer.score(out[j], y)
                correct[j][pos], pred[j][pos] = c, pr
                if dyn is not None and dyn[j] is not None:
                    dyn[j].update(pos, out[j], y)
        return correct, pred, (loss_sum / n).tolist()


def _per_model_loss(scorer: Scorer, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(K, B, C) outputs and (K, B[, C]) targets -> (K,) mean losses, one per model."""
    kk, b = out.shape[:2]
    if scorer.multilabel:
        per = nn.functional.binary_cross_entropy_with_logits(out, y, reduction="none")
        return per.mean(dim=(1, 2))
    per = nn.functional.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none")
    return per.view(kk, b).mean(1)


def _stacked_optimizer(
    ctx: Context, opts: list[torch.optim.Optimizer], stacked: list[torch.Tensor]
) -> torch.optim.Optimizer:
    """One optimiser over the stacked parameters, its state stacked from ``opts``."""
    opt = make_optimizer(ctx.p, stacked)
    states = [o.state_dict() for o in opts]
    if not states[0]["state"]:
        return opt
    merged = {}
    for idx, st in states[0]["state"].items():
        merged[idx] = {}
        for key, v in st.items():
            if torch.is_tensor(v) and v.ndim > 0:
                merged[idx][key] = torch.stack([s["state"][idx][key] for s in states])
            else:
                merged[idx][key] = v  # Adam's step count: the same for all models
    opt.load_state_dict({"state": merged, "param_groups": states[0]["param_groups"]})
    return opt
