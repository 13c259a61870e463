"""Saver and loader: write everything a run needs to continue exactly, and read it back safely.

Explained in: book/minibatch.md, book/optimizers.md (schedule-free modes in checkpoints)
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
from contextlib import suppress
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from .early_stopping import EarlyStopping, _unwrap
from .history import History

FORMAT = "nnbolts-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: corrupt, not ours, or from a different model."""


# --------------------------------------------------------------------------------------------
# random-number-generator state


def _numpy_state() -> dict:
    # numpy's legacy state holds an ndarray, which torch's safe loader refuses: keep a tensor.
    state = np.random.get_state(legacy=False)
    inner = state["state"]
    return {
        "bit_generator": state["bit_generator"],
        "key": torch.from_numpy(inner["key"].astype(np.int64)),
        "pos": int(inner["pos"]),
        "has_gauss": int(state["has_gauss"]),
        "gauss": float(state["gauss"]),
    }


def _set_numpy_state(saved: dict) -> None:
    np.random.set_state(
        {
            "bit_generator": saved["bit_generator"],
            "state": {"key": saved["key"].numpy().astype(np.uint32), "pos": saved["pos"]},
            "has_gauss": saved["has_gauss"],
            "gauss": saved["gauss"],
        }
    )


def rng_state(generator: torch.Generator | None = None) -> dict:
    """Every random-number generator a training run draws from.

    The global torch CPU generator (dropout, default initialisation), the CUDA generator of every
    device when CUDA is available, the data-order ``generator`` (if given), Python's ``random`` and
    numpy's global generator.

    Explained in: book/minibatch.md
    """
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "generator": generator.get_state() if generator is not None else None,
        "python": random.getstate(),
        "numpy": _numpy_state(),
    }


def set_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    """Inverse of :func:`rng_state`: put every generator back where it was.

    Explained in: book/minibatch.md
    """
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        for index, cuda_state in enumerate(cuda_states):
            torch.cuda.set_rng_state(cuda_state, index)
    if generator is not None:
        if state.get("generator") is None:
            raise CheckpointError("the checkpoint holds no data-order generator state")
        generator.set_state(state["generator"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    _set_numpy_state(state["numpy"])


# --------------------------------------------------------------------------------------------
# schedulers


def _is_torch_scheduler(scheduler) -> bool:
    return isinstance(scheduler, (LRScheduler, ReduceLROnPlateau))


def _without_lambdas(state):
    # LambdaLR-like schedulers store the __dict__ of callable-object lambdas. A schedule is code
    # (a pure function of the step, rebuilt by the caller), and only its position belongs in the
    # checkpoint; dropping them also keeps the file loadable with weights_only=True.
    if isinstance(state, dict):
        return {
            key: [None] * len(value) if key == "lr_lambdas" else _without_lambdas(value)
            for key, value in state.items()
        }
    if isinstance(state, list):
        return [_without_lambdas(value) for value in state]
    return state


def _scheduler_state(scheduler, history: History, epoch: int):
    if scheduler is None:
        return None
    if _is_torch_scheduler(scheduler):
        return {
            "kind": "torch",
            "class": type(scheduler).__name__,
            "state": _without_lambdas(scheduler.state_dict()),
        }
    if callable(scheduler):
        return {"kind": "schedule", "step": history.steps, "epoch": epoch}
    raise TypeError(
        "expected scheduler to be a torch LRScheduler or a schedule (a callable step -> lr), "
        f"got {type(scheduler).__name__}"
    )


# --------------------------------------------------------------------------------------------
# saving


def _write_atomically(payload: dict, path: Path) -> None:
    # The new file is written next to the old one and renamed over it: os.replace is atomic on
    # POSIX and Windows, so a crash or a full disk mid-write leaves the previous checkpoint whole.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    with suppress(OSError, AttributeError):  # make the rename itself durable where possible
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


_PLAIN = (torch.Tensor, bool, int, float, str, type(None))


def _check_plain(value, where: str) -> None:
    # Refuse at save time what the safe loader would refuse at load time, when it is too late.
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has a key of type {type(key).__name__}: use str or int")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}: a checkpoint's extra holds only tensors, numbers, "
        "strings, None, and lists, tuples and dicts of them"
    )


def save_checkpoint(
    path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler=None,
    epoch: int,
    history: History | dict,
    early_stopping: EarlyStopping | None = None,
    generator: torch.Generator | None = None,
    extra: dict | None = None,
) -> Path:
    """Save everything needed to continue training exactly where it stopped.

    The file holds the model's ``state_dict`` (without a DistributedDataParallel ``module.``
    prefix), the optimizer's ``state_dict`` (momentum buffers, Adam moments, step counts, learning
    rates), the scheduler (a torch ``LRScheduler``'s ``state_dict``, or for an nnbolts schedule —
    a pure function of the step — its position), the number of completed ``epoch``\\ s, the
    ``history``, the early-stopping state, and every random-number-generator state
    (:func:`rng_state`, including the data-order ``generator``). ``extra`` is any small dict of
    tensors, numbers, strings, lists and dicts of your own.

    The write is atomic: the payload goes to a temporary file in the same directory that is then
    renamed over ``path``, so a failed write never destroys the previous checkpoint.

    A schedule-free optimizer (one with ``train()`` and ``eval()``, such as
    :class:`nnbolts.optim.ScheduleFreeAdamW`) is saved in whatever mode it is in, and the mode
    travels in its state dict: the model's weights are the training point :math:`y` in training
    mode and the averaged :math:`x` in eval mode, and the model and optimizer loaded together
    continue exactly. Nothing is switched here (a switch there and back is not exact in floating
    point). ``fit`` saves at the end of an epoch, in eval mode, so its checkpoints hold :math:`x`,
    the weights to evaluate, also for a model loaded without its optimizer.

    ``torch.save({"model": model.state_dict(), ...}, path)`` is the bare equivalent. Example::

        save_checkpoint("run.pt", model=model, optimizer=opt, epoch=3, history=history)
        info = load_checkpoint("run.pt", model=model, optimizer=opt)

    Explained in: book/minibatch.md
    """
    path = Path(path)
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected model to be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"expected optimizer to be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    if isinstance(history, dict):
        history = History.from_dict(history)
    if not isinstance(history, History):
        raise TypeError(f"expected history to be a History, got {type(history).__name__}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"Invalid epoch: {epoch!r} (must be an int >= 0)")
    if extra is not None:
        if not isinstance(extra, dict):
            raise TypeError(f"expected extra to be a dict, got {type(extra).__name__}")
        _check_plain(extra, "extra")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "torch_version": str(torch.__version__),  # a plain str, not TorchVersion
        "epoch": epoch,
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": _scheduler_state(scheduler, history, epoch),
        "history": history.to_dict(),
        "early_stopping": early_stopping.state_dict() if early_stopping is not None else None,
        "rng": rng_state(generator),
        "extra": extra,
    }
    _write_atomically(payload, path)
    return path


# --------------------------------------------------------------------------------------------
# loading


def _read(path: Path, weights_only: bool) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    # torch.save writes a zip archive with a CRC-32 per record; checking them catches a cut file
    # and flipped bytes alike, which torch.load alone may read without complaint.
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated (not a readable archive: {error})"
        ) from error
    if bad is not None:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated (bad CRC in {bad})")
    try:
        data = torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as error:
        if weights_only and "Weights only load failed" in str(error):
            raise CheckpointError(
                f"checkpoint {path} holds Python objects other than tensors and plain containers, "
                "which the safe loader refuses (an nnbolts checkpoint never does; perhaps "
                "`extra` did). If and only if you trust the file, pass weights_only=False."
            ) from error
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({error})") from error
    except (RuntimeError, EOFError, KeyError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({error})") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an nnbolts checkpoint (no {FORMAT!r} format tag); "
            "save one with nnbolts.train.save_checkpoint"
        )
    if not isinstance(data.get("version"), int) or data["version"] > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {data.get('version')!r}; this nnbolts reads "
            f"versions up to {VERSION}"
        )
    return data


def _check_model(path: Path, saved: dict, model: nn.Module) -> None:
    current = model.state_dict()
    missing = [key for key in current if key not in saved]
    unexpected = [key for key in saved if key not in current]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} is from a different model: it has no entry for key "
            f"{missing[0]!r} (missing: {missing})"
        )
    if unexpected:
        raise CheckpointError(
            f"checkpoint {path} is from a different model: key {unexpected[0]!r} is not in this "
            f"model (unexpected: {unexpected})"
        )
    for key, tensor in current.items():
        if tuple(saved[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"checkpoint {path} is from a different model: key {key!r} has shape "
                f"{tuple(saved[key].shape)} in the checkpoint but {tuple(tensor.shape)} in the "
                "model"
            )


def _check_optimizer(path: Path, saved: dict, optimizer: torch.optim.Optimizer) -> None:
    groups = saved.get("param_groups", [])
    if len(groups) != len(optimizer.param_groups):
        raise CheckpointError(
            f"checkpoint {path}: the optimizer has {len(optimizer.param_groups)} parameter "
            f"groups but the checkpoint's has {len(groups)}"
        )
    for index, (mine, theirs) in enumerate(zip(optimizer.param_groups, groups, strict=True)):
        if len(mine["params"]) != len(theirs["params"]):
            raise CheckpointError(
                f"checkpoint {path}: optimizer parameter group {index} has "
                f"{len(mine['params'])} parameters but the checkpoint's has {len(theirs['params'])}"
            )


def _check_scheduler(path: Path, saved, scheduler) -> None:
    if scheduler is None:
        return
    if saved is None:
        raise CheckpointError(
            f"checkpoint {path} holds no scheduler state, but a scheduler was given to load into"
        )
    if _is_torch_scheduler(scheduler):
        if saved.get("kind") != "torch" or saved.get("class") != type(scheduler).__name__:
            raise CheckpointError(
                f"checkpoint {path} holds the state of a {saved.get('class', 'schedule')}, "
                f"not of a {type(scheduler).__name__}"
            )
    elif saved.get("kind") != "schedule":
        raise CheckpointError(
            f"checkpoint {path} holds a torch {saved.get('class')} state, but the schedule given "
            "is a plain callable"
        )


def load_checkpoint(
    path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler=None,
    early_stopping: EarlyStopping | None = None,
    generator: torch.Generator | None = None,
    restore_rng: bool = True,
    weights_only: bool = True,
) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` into the given objects.

    Restores the model's weights, the optimizer's state, the scheduler's state (a plain schedule
    needs none: it is a function of the step, which the history holds), the early-stopping state,
    and — with ``restore_rng`` — every random-number generator, including the data-order
    ``generator``. Everything is checked before anything is changed, so a mismatched checkpoint
    leaves the objects untouched.

    Returns a dict with ``epoch`` (completed epochs), ``history`` (a :class:`History`), ``step``
    (completed optimizer steps), ``extra`` and ``torch_version``.

    Safety: the file is read with ``torch.load(weights_only=True)``, PyTorch's restricted
    unpickler that builds only tensors and plain containers and never runs code from the file
    (a general pickle can). Everything nnbolts saves fits in that subset. ``weights_only=False``
    exists for a file *you* wrote whose ``extra`` holds other objects; never use it on a file
    from elsewhere. Tensors are read onto the CPU and copied to each parameter's device.

    Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError` (a
    ``ValueError``) for a corrupt or truncated file, a file that is not an nnbolts checkpoint, or
    one from a different model (naming the first key or shape that differs).

    Explained in: book/minibatch.md
    """
    path = Path(path)
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected model to be a torch.nn.Module, got {type(model).__name__}")
    data = _read(path, weights_only)
    target = _unwrap(model)
    _check_model(path, data["model"], target)
    if optimizer is not None:
        _check_optimizer(path, data["optimizer"], optimizer)
    _check_scheduler(path, data.get("scheduler"), scheduler)
    saved_stopper = data.get("early_stopping")
    if early_stopping is not None and saved_stopper is not None:
        for key in ("mode", "monitor"):
            if saved_stopper.get(key) != getattr(early_stopping, key):
                raise CheckpointError(
                    f"checkpoint {path}: early stopping was saved with {key}="
                    f"{saved_stopper.get(key)!r} but this EarlyStopping has {key}="
                    f"{getattr(early_stopping, key)!r}"
                )
    if restore_rng and generator is not None and data["rng"].get("generator") is None:
        raise CheckpointError(f"checkpoint {path} holds no data-order generator state")

    target.load_state_dict(data["model"])
    if optimizer is not None:
        try:
            optimizer.load_state_dict(data["optimizer"])
        except (ValueError, KeyError) as error:
            raise CheckpointError(
                f"checkpoint {path}: optimizer state does not fit this optimizer ({error})"
            ) from error
    if scheduler is not None and _is_torch_scheduler(scheduler):
        scheduler.load_state_dict(data["scheduler"]["state"])
    if early_stopping is not None:
        if saved_stopper is not None:
            early_stopping.load_state_dict(saved_stopper, model=target)
        else:
            early_stopping.reset()
    if restore_rng:
        set_rng_state(data["rng"], generator)
    history = History.from_dict(data["history"])
    return {
        "epoch": data["epoch"],
        "history": history,
        "step": history.steps,
        "extra": data.get("extra"),
        "torch_version": data.get("torch_version"),
    }
