"""Metrics for :func:`nnbolts.train.fit`: functions ``(output, y) -> scalar tensor``.

Explained in: book/minibatch.md
"""

from __future__ import annotations

import torch


def accuracy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The fraction of correctly classified samples, as a 0-dimensional tensor on the device.

    ``output`` of shape ``[n, C]`` with ``C > 1`` holds class scores (logits or probabilities):
    the prediction is ``output.argmax(1)``, compared with the integer labels ``y``. ``output`` of
    shape ``[n]`` or ``[n, 1]`` holds *logits* of a binary classifier (as fed to
    ``binary_cross_entropy_with_logits``): the prediction is ``output > 0``, compared with ``y``
    (0/1, integer or float). For probabilities, use ``lambda p, y: accuracy(p - 0.5, y)``.

    .. math::  \text{acc} = \frac{1}{n}\sum_i [\hat y_i = y_i]

    No ``.item()``: the value stays on the device, so ``fit`` can gather it without a
    synchronisation per step. Example::

        fit(model, F.cross_entropy, opt, (X, y), epochs=5, batch_size=32,
            metrics={"acc": accuracy})          # history.epochs["train_acc"]

    Explained in: book/minibatch.md
    """
    if not isinstance(output, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("accuracy expects two tensors (output, y)")
    if output.dim() == 2 and output.shape[1] > 1:
        predicted = output.argmax(dim=1)
        target = y
    else:
        predicted = output.reshape(-1) > 0
        target = y.reshape(-1) > 0.5 if y.is_floating_point() else y.reshape(-1).bool()
    if predicted.shape[0] != target.shape[0]:
        raise ValueError(
            f"accuracy: output holds {predicted.shape[0]} predictions but y has {target.shape[0]}"
        )
    dtype = output.dtype if output.is_floating_point() else torch.get_default_dtype()
    return (predicted == target.reshape(predicted.shape)).to(dtype).mean()
