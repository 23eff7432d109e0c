"""The one training loop of the package: minibatch epochs with early stopping on a hold-out score.

The ensemble (:meth:`~sb3_poplin.common.dynamics.ProbabilisticEnsemble.fit`), the termination classifier and the
policy distillations (:mod:`sb3_poplin.common.distillation`) each say what one gradient step is, how an epoch's
minibatches are drawn and, where they stop early, how the hold-out is scored and what is kept at an improvement; this
loop runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch as th


@dataclass
class FitResult:
    """What a fit did.

    :param epochs: epochs run (the last one possibly cut short by ``max_updates``)
    :param updates: gradient steps run
    :param mean_loss: mean of the losses the steps returned (NaN without a step); one value per loss a step returns
    :param best: the best hold-out score seen (elementwise, e.g. per ensemble member), None without scoring
    :param last: the hold-out score after the last epoch, None without scoring
    """

    epochs: int
    updates: int
    mean_loss: th.Tensor
    best: th.Tensor | None
    last: th.Tensor | None


def fit(
    train_step: Callable[[th.Tensor], th.Tensor],
    epoch_batches: Callable[[], Iterable[th.Tensor]],
    max_epochs: int,
    score: Callable[[], th.Tensor] | None = None,
    on_improvement: Callable[[th.Tensor], None] | None = None,
    patience: int | None = None,
    max_updates: int | None = None,
    min_relative_improvement: float = 0.0,
) -> FitResult:
    """Run up to ``max_epochs`` epochs of gradient steps, stopping early on the hold-out score.

    :param train_step: one gradient step on a minibatch of indices; returns its loss(es), detached (summed on the device:
        reading each one on the host would wait for a GPU after every step)
    :param epoch_batches: the minibatches of indices of a new epoch (drawn when the epoch starts)
    :param max_epochs: the most epochs
    :param score: the hold-out score to minimise, a tensor (several elements: each improves on its own, e.g. one per
        ensemble member); scored before the first epoch and after each. None: no early stopping
    :param on_improvement: called with the elementwise mask of the scores that improved after an epoch (e.g. to keep
        those parameters)
    :param patience: stop after this many epochs in which no score improved (None: never)
    :param max_updates: stop after this many gradient steps (None: no cap)
    :param min_relative_improvement: a score improves when it falls by more than this share of its best
    """
    best = last = score() if score is not None else None
    stale = updates = epoch = 0
    loss_sum: th.Tensor | None = None
    capped = False
    for epoch in range(1, max_epochs + 1):  # noqa: B007 (reported)
        for batch in epoch_batches():
            loss = train_step(batch)
            loss_sum = loss if loss_sum is None else loss_sum + loss
            updates += 1
            capped = max_updates is not None and updates >= max_updates
            if capped:
                break
        if score is not None and best is not None:
            last = score()
            improved = last < best - min_relative_improvement * best.abs()
            if bool(improved.any()):
                if on_improvement is not None:
                    on_improvement(improved)
                best = th.where(improved, last, best)
                stale = 0
            else:
                stale += 1
        if capped or (patience is not None and stale >= patience):
            break
    mean_loss = loss_sum / updates if loss_sum is not None else th.tensor(float("nan"))
    return FitResult(epochs=epoch, updates=updates, mean_loss=mean_loss, best=best, last=last)


__all__ = ["FitResult", "fit"]
