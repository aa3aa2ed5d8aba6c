"""Slow, plain-loop references for the agreement metrics (METHOD.md, "Agreement").

Written from the definitions, one example and one model at a time, with no vectorisation,
so that agreement.metrics and agreement.correlate can be checked against them.
"""

from __future__ import annotations

import math

import numpy as np


def _models(log, t):
    return [k for k in range(log.n_models) if log.logged[k, t]]


def _pred_key(log, k, t, n):
    p = log.pred[k, t, n]
    return tuple(bool(v) for v in p) if np.ndim(p) else int(p)


def _agreed(log, t, n):
    ks = _models(log, t)
    return bool(ks) and all(log.correct[k, t, n] for k in ks)


#: the per-epoch values naive_curves computes (the columns of agreement.curves it checks)
CURVE_KEYS = (
    "n_models_logged",
    "accuracy_mean",
    "accuracy_std",
    "tp_agreement",
    "lower_bound",
    "hacohen_agreement",
    "fp_agreement",
)


def naive_curves(log):
    """Dict of lists, one value per epoch (NaN where no model logged the epoch)."""
    out = {key: [] for key in CURVE_KEYS}
    n_ex = log.n_examples
    for t in range(log.n_epochs):
        ks = _models(log, t)
        out["n_models_logged"].append(len(ks))
        if not ks:
            for key in out:
                if key != "n_models_logged":
                    out[key].append(math.nan)
            continue
        accs = []
        for k in ks:
            right = 0
            for n in range(n_ex):
                right += int(log.correct[k, t, n])
            accs.append(right / n_ex)
        mean = sum(accs) / len(accs)
        var = sum((a - mean) ** 2 for a in accs) / len(accs)
        out["accuracy_mean"].append(100 * mean)
        out["accuracy_std"].append(100 * math.sqrt(var))
        n_all = 0
        n_any = 0
        for n in range(n_ex):
            vals = [bool(log.correct[k, t, n]) for k in ks]
            n_all += all(vals)
            n_any += any(vals)
        out["tp_agreement"].append(100 * n_all / max(1, n_any))
        out["lower_bound"].append(100 * (1 - min(sum(1 - a for a in accs), 1)))
        if log.pred is None:
            out["hacohen_agreement"].append(math.nan)
            out["fp_agreement"].append(math.nan)
            continue
        frac_sum = 0.0
        fp = 0
        for n in range(n_ex):
            preds = [_pred_key(log, k, t, n) for k in ks]
            counts = {}
            for p in preds:
                counts[p] = counts.get(p, 0) + 1
            frac_sum += max(counts.values()) / len(ks)
            wrong = [not log.correct[k, t, n] for k in ks]
            if all(wrong) and len(counts) == 1:
                fp += 1
        out["hacohen_agreement"].append(100 * frac_sum / n_ex)
        out["fp_agreement"].append(100 * fp / n_ex)
    return out


def naive_per_example(log):
    """Dict of lists, one value per example; None for an epoch that does not exist."""
    out = {"learned_epoch": [], "first_agreed_epoch": [], "forgetting_events": []}
    out["mean_correct"] = []
    eps = [t for t in range(log.n_epochs) if _models(log, t)]
    for n in range(log.n_examples):
        agreed = [_agreed(log, t, n) for t in eps]
        first = None
        for t, a in zip(eps, agreed, strict=True):
            if a:
                first = int(log.epochs[t])
                break
        learned = None
        for i in range(len(eps)):
            if all(agreed[i:]):
                learned = int(log.epochs[eps[i]])
                break
        forgets = 0
        right = 0
        cells = 0
        for k in range(log.n_models):
            seq = [bool(log.correct[k, t, n]) for t in range(log.n_epochs) if log.logged[k, t]]
            for prev, nxt in zip(seq[:-1], seq[1:], strict=True):
                if prev and not nxt:
                    forgets += 1
            right += sum(seq)
            cells += len(seq)
        out["learned_epoch"].append(learned)
        out["first_agreed_epoch"].append(first)
        out["forgetting_events"].append(forgets)
        out["mean_correct"].append(right / cells if cells else math.nan)
    return out


def naive_metric_curve(log, values):
    """m(t) per epoch; ``values`` maps id -> statistic (missing ids and NaN are skipped)."""
    out = []
    for t in range(log.n_epochs):
        got = []
        for n in range(log.n_examples):
            v = values.get(str(log.ids[n]))
            if v is None or math.isnan(v):
                continue
            if _agreed(log, t, n):
                got.append(v)
        out.append(sum(got) / len(got) if got else math.nan)
    return out


def naive_categorical(log, values):
    """{value: [percent per epoch]}; ``values`` maps id -> category (missing ids skipped)."""
    out = {}
    for v in sorted(set(values.values())):
        members = [n for n in range(log.n_examples) if values.get(str(log.ids[n])) == v]
        if not members:
            continue
        out[v] = [
            100 * sum(_agreed(log, t, n) for n in members) / len(members)
            for t in range(log.n_epochs)
        ]
    return out


def naive_average_ranks(x):
    """Average ranks (1-based) by comparing every pair: O(n^2)."""
    n = len(x)
    ranks = []
    for i in range(n):
        less = sum(1 for j in range(n) if x[j] < x[i])
        equal = sum(1 for j in range(n) if x[j] == x[i])
        ranks.append(less + (equal + 1) / 2)
    return ranks


def naive_logit_measures(row, label, multilabel):
    """(p_true, margin) of one example's logits, with math.exp and one class at a time.

    Single-label: softmax probability of ``label``, and its logit minus the largest other.
    Multi-label (``label`` a list of bools): product over classes of the sigmoid of the
    signed logit (+ for present, - for absent), and the smallest signed logit.
    """
    row = [float(v) for v in row]
    if multilabel:
        prob = 1.0
        smallest = math.inf
        for z, present in zip(row, label, strict=True):
            s = z if present else -z
            prob *= 1.0 / (1.0 + math.exp(-s)) if s > -700 else 0.0
            smallest = min(smallest, s)
        return prob, smallest
    top = max(row)
    total = sum(math.exp(z - top) for z in row)
    p = math.exp(row[label] - top) / total
    other = max(z for c, z in enumerate(row) if c != label)
    return p, row[label] - other


def naive_dynamics(log):
    """Per example: confidence, variability (population std) and AUM, as dict of lists.

    Per model over the logged epochs whose value is not NaN, then the mean over models that
    have at least one value; NaN where none has.
    """
    out = {"confidence": [], "variability": [], "aum": []}
    for n in range(log.n_examples):
        per = {"confidence": [], "variability": [], "aum": []}
        for k in range(log.n_models):
            ps, ms = [], []
            for t in range(log.n_epochs):
                if not log.logged[k, t]:
                    continue
                p, m = float(log.p_true[k, t, n]), float(log.margin[k, t, n])
                if not math.isnan(p):
                    ps.append(p)
                if not math.isnan(m):
                    ms.append(m)
            if ps:
                mean = sum(ps) / len(ps)
                per["confidence"].append(mean)
                per["variability"].append(math.sqrt(sum((p - mean) ** 2 for p in ps) / len(ps)))
            if ms:
                per["aum"].append(sum(ms) / len(ms))
        for key, values in per.items():
            out[key].append(sum(values) / len(values) if values else math.nan)
    return out
