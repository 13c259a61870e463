"""The observation protocol between the grader and a student's kernel (public: this file runs
*beside* student code, and nothing in it is secret).

The grader never runs its checks in the student's kernel. It draws fresh cases, asks the kernel
for **observations** -- "call your ``adam_step`` on these tensors and tell me what it returned"
-- and decides outside, where student code cannot reach. This module is both ends' wire format
and the kernel's half of the exchange:

* :func:`encode` / :func:`decode`: values as JSON-safe data. Tensors (any device, the common
  dtypes, ``requires_grad``) travel as raw little-endian bytes in base64; numbers, strings,
  ``None``, tuples, lists, dicts with string/int keys, sets, ``torch.Generator`` states; a
  value that is none of these stays in the kernel and travels as a *handle*. :func:`decode`
  checks every type, size and nesting depth and refuses anything else, so a malformed reply is
  an error, never code run by the grader.
* :func:`dispatch`: the kernel executes the grader's requests through it -- ``get`` a name of
  the notebook, ``call`` a function or handle, ``next`` of an iterator handle, ``map`` a
  callable over many argument lists (a schedule's 1000 steps in one exchange), ``define``
  public harness code (how a training loop's model is built from a recipe and a seed).

The grader loads this file's source into the kernel (it never imports anything from the
course's folders: the kernel cannot read them) and calls :func:`dispatch` through a Jupyter
``user_expressions`` request; the reply is the JSON text that :func:`dispatch` returns. Only
``torch`` and the standard library are used.
"""

from __future__ import annotations

import base64
import json
import math
import sys
import traceback

import torch

PROTOCOL = 1
MAX_DEPTH = 12
MAX_ITEMS = 100_000  # containers' elements, all together, in one message
MAX_TENSOR_ELEMENTS = 4_000_000
MAX_TEXT = 1_000_000  # characters of one string
MAX_PREFETCH_CHARS = 4_000_000  # an iterator's items sent ahead of need, in one reply

_DTYPES = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float64": torch.float64, "complex64": torch.complex64, "complex128": torch.complex128,
    "int8": torch.int8, "uint8": torch.uint8, "int16": torch.int16, "int32": torch.int32,
    "int64": torch.int64, "bool": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}


class ProtocolError(ValueError):
    """A message that does not follow this protocol."""


class Handle:
    """A value that stays on the other side, named by a number."""

    __slots__ = ("id", "kind")

    def __init__(self, id: int, kind: str):
        self.id, self.kind = id, kind

    def __repr__(self) -> str:
        return f"<{self.kind} in the student's kernel>"


class HarnessObject:
    """An instance of a class of the public harness, sent by its class name and attributes."""

    __slots__ = ("cls", "attributes")

    def __init__(self, cls: str, attributes: dict):
        self.cls, self.attributes = cls, attributes


# --------------------------------------------------------------------------------------------
# the wire format
# --------------------------------------------------------------------------------------------

def encode(value, *, handles=None, refs=None, harness_classes=()):
    """``value`` as JSON-safe data. ``handles(obj) -> Handle`` keeps an unencodable object on
    this side (without it, such a value is a :class:`ProtocolError`); ``refs`` maps ``id(obj)``
    of objects the other side already holds (a call's arguments) to their path, so that "the
    argument itself" comes back as such."""
    counter = [0]

    def enc(x, depth):
        counter[0] += 1
        if depth > MAX_DEPTH or counter[0] > MAX_ITEMS:
            raise ProtocolError("the value is nested too deeply or holds too many items")
        if refs is not None and id(x) in refs and isinstance(x, (torch.Tensor, torch.Generator)):
            return {"$": "ref", "path": refs[id(x)]}
        if x is None or isinstance(x, (bool, str)):
            if isinstance(x, str) and len(x) > MAX_TEXT:
                raise ProtocolError("a string is too long")
            return x if type(x) in (bool, str, type(None)) else str(x)
        if isinstance(x, int):
            return {"$": "int", "v": str(int(x))} if abs(int(x)) >= 2**53 else int(x)
        if isinstance(x, float):
            return float(x) if math.isfinite(x) else {"$": "float", "v": repr(float(x))}
        if isinstance(x, torch.Tensor):
            return _encode_tensor(x)
        if isinstance(x, torch.Generator):
            return {"$": "generator", "device": str(x.device),
                    "state": base64.b64encode(x.get_state().numpy().tobytes()).decode()}
        if isinstance(x, tuple) and not hasattr(x, "_fields"):
            return {"$": "tuple", "v": [enc(v, depth + 1) for v in x]}
        if isinstance(x, list):
            return [enc(v, depth + 1) for v in x]
        if isinstance(x, (set, frozenset)):
            return {"$": "frozenset" if isinstance(x, frozenset) else "set",
                    "v": [enc(v, depth + 1) for v in x]}
        if isinstance(x, dict):
            keys = list(x)
            if all(type(k) is str for k in keys) and "$" not in x:
                return {k: enc(x[k], depth + 1) for k in keys}
            return {"$": "dict", "k": [enc(k, depth + 1) for k in keys],
                    "v": [enc(x[k], depth + 1) for k in keys]}
        if isinstance(x, Handle):
            return {"$": "handle", "id": x.id}
        if type(x).__name__ in harness_classes:
            return {"$": "harness", "cls": type(x).__name__,
                    "v": enc({k: v for k, v in vars(x).items()}, depth + 1)}
        if handles is not None:
            handle = handles(x)
            return {"$": "handle", "id": handle.id, "kind": handle.kind}
        raise ProtocolError(f"a {type(x).__name__} cannot be sent")

    return enc(value, 0)


def _encode_tensor(t: torch.Tensor) -> dict:
    if t.is_sparse or t.layout != torch.strided:
        raise ProtocolError("a sparse or non-strided tensor cannot be sent")
    if t.dtype not in _DTYPE_NAMES:
        raise ProtocolError(f"a tensor of dtype {t.dtype} cannot be sent")
    if t.numel() > MAX_TENSOR_ELEMENTS:
        raise ProtocolError(f"a tensor of {t.numel()} elements is too large to send")
    device = str(t.device)
    if t.device.type == "meta":
        data = ""
    else:
        flat = torch.Tensor.contiguous(torch.Tensor.detach(t)).to("cpu").reshape(-1)
        if flat.dtype == torch.bfloat16:
            raw = flat.view(torch.int16).numpy().tobytes()
        else:
            raw = flat.resolve_conj().resolve_neg().numpy().tobytes()
        data = base64.b64encode(raw).decode()
    return {"$": "tensor", "dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape),
            "device": device, "grad": bool(t.requires_grad), "data": data}


def decode(data, *, handle=None, refs=None, harness=None):
    """The value :func:`encode` wrote, checked: anything else raises :class:`ProtocolError`.
    ``handle(id, kind)`` turns a handle into a local proxy; ``refs(path)`` resolves a
    reference to an object this side sent; ``harness(cls, attributes)`` rebuilds a harness
    object."""
    counter = [0]

    def dec(x, depth):
        counter[0] += 1
        if depth > MAX_DEPTH or counter[0] > MAX_ITEMS:
            raise ProtocolError("the value is nested too deeply or holds too many items")
        if x is None or type(x) in (bool, float):
            return x
        if type(x) is int:
            return x
        if type(x) is str:
            if len(x) > MAX_TEXT:
                raise ProtocolError("a string is too long")
            return x
        if type(x) is list:
            return [dec(v, depth + 1) for v in x]
        if type(x) is not dict:
            raise ProtocolError(f"unexpected {type(x).__name__} in a message")
        tag = x.get("$")
        if tag is None:
            return {_key(k): dec(v, depth + 1) for k, v in x.items()}
        if tag == "int":
            return int(_text(x, "v", 400))
        if tag == "float":
            text = _text(x, "v", 10)
            if text not in ("nan", "inf", "-inf"):
                raise ProtocolError(f"not a special float: {text!r}")
            return float(text)
        if tag == "tuple":
            return tuple(dec(v, depth + 1) for v in _list(x, "v"))
        if tag in ("set", "frozenset"):
            items = [dec(v, depth + 1) for v in _list(x, "v")]
            try:
                return set(items) if tag == "set" else frozenset(items)
            except TypeError as exc:
                raise ProtocolError("a set holds unhashable values") from exc
        if tag == "dict":
            keys, values = _list(x, "k"), _list(x, "v")
            if len(keys) != len(values):
                raise ProtocolError("a dict's keys and values differ in number")
            out = {}
            for k, v in zip(keys, values):
                key = dec(k, depth + 1)
                try:
                    out[key] = dec(v, depth + 1)
                except TypeError as exc:
                    raise ProtocolError("a dict has an unhashable key") from exc
            return out
        if tag == "tensor":
            return _decode_tensor(x)
        if tag == "generator":
            g = torch.Generator(device=_device(_text(x, "device", 40)))
            state = torch.frombuffer(bytearray(_b64(_text(x, "state", 100_000))),
                                     dtype=torch.uint8)
            try:
                g.set_state(state)
            except (RuntimeError, ValueError) as exc:
                raise ProtocolError("an invalid generator state") from exc
            return g
        if tag == "handle":
            if handle is None:
                raise ProtocolError("a handle where none is expected")
            hid = x.get("id")
            if type(hid) is not int or hid < 0:
                raise ProtocolError("a handle without a valid id")
            kind = x.get("kind", "object")
            return handle(hid, kind if type(kind) is str and len(kind) <= 80 else "object")
        if tag == "ref":
            if refs is None:
                raise ProtocolError("a reference where none is expected")
            return refs(_list(x, "path"))
        if tag == "harness":
            if harness is None:
                raise ProtocolError("a harness object where none is expected")
            attributes = dec(x.get("v"), depth + 1)
            if type(attributes) is not dict:
                raise ProtocolError("a harness object without attributes")
            return harness(_text(x, "cls", 200), attributes)
        raise ProtocolError(f"unknown tag {tag!r}")

    return dec(data, 0)


def _key(k):
    if type(k) is not str:
        raise ProtocolError("a non-string key")
    return k


def _text(x: dict, key: str, limit: int) -> str:
    v = x.get(key)
    if type(v) is not str or len(v) > limit:
        raise ProtocolError(f"field {key!r} is not a string of at most {limit} characters")
    return v


def _list(x: dict, key: str) -> list:
    v = x.get(key)
    if type(v) is not list:
        raise ProtocolError(f"field {key!r} is not a list")
    return v


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ProtocolError("invalid base64 data") from exc


def _device(text: str) -> torch.device:
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise ProtocolError(f"not a device: {text!r}") from exc
    if device.type not in ("cpu", "cuda", "meta", "mps"):
        raise ProtocolError(f"not a device tensors may travel on: {text!r}")
    return device


def _decode_tensor(x: dict) -> torch.Tensor:
    name = x.get("dtype")
    dtype = _DTYPES.get(name) if type(name) is str else None
    shape = x.get("shape")
    if dtype is None:
        raise ProtocolError(f"unknown dtype {x.get('dtype')!r}")
    if type(shape) is not list or len(shape) > 16 or not all(
            type(n) is int and 0 <= n for n in shape):
        raise ProtocolError("a tensor's shape is not a list of sizes")
    numel = math.prod(shape)
    if numel > MAX_TENSOR_ELEMENTS:
        raise ProtocolError(f"a tensor of {numel} elements is too large")
    device = _device(_text(x, "device", 40))
    grad = x.get("grad", False)
    if type(grad) is not bool:
        raise ProtocolError("a tensor's requires_grad is not a bool")
    if device.type == "meta":
        t = torch.empty(shape, dtype=dtype, device="meta")
    else:
        raw = _b64(_text(x, "data", 4 * (numel * 16 // 3 + 4)))
        item = torch.empty((), dtype=dtype).element_size()
        if len(raw) != numel * item:
            raise ProtocolError(f"a tensor's data holds {len(raw)} bytes, not {numel * item}")
        if dtype == torch.bfloat16:
            flat = torch.frombuffer(bytearray(raw), dtype=torch.int16).view(torch.bfloat16) \
                if numel else torch.empty(0, dtype=dtype)
        else:
            flat = torch.frombuffer(bytearray(raw), dtype=dtype) if numel else torch.empty(
                0, dtype=dtype)
        t = flat.reshape(shape).to(device)
    if grad:
        if not (dtype.is_floating_point or dtype.is_complex):
            raise ProtocolError("requires_grad on a tensor that cannot have gradients")
        t.requires_grad_(True)
    return t


# --------------------------------------------------------------------------------------------
# the kernel's half
# --------------------------------------------------------------------------------------------

_objects: dict[int, object] = {}  # handles: values that stay in the kernel
_harness: dict[str, object] = {}  # the public harness code the grader defined here
_namespace: dict | None = None  # the notebook's user namespace


def _keep(obj) -> Handle:
    for hid, kept in _objects.items():
        if kept is obj:
            return Handle(hid, _kind(obj))
    hid = len(_objects)
    _objects[hid] = obj
    return Handle(hid, _kind(obj))


def _kind(obj) -> str:
    if callable(obj):
        return "callable"
    if hasattr(obj, "__next__"):
        return "iterator"
    return type(obj).__name__[:60]


def _clone(x):
    """A copy of tensors (detached), dicts, lists and tuples, as the grader makes of a call's
    arguments; anything else is shared."""
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_clone(v) for v in x) if type(x) in (list, tuple) else x
    return x


def _rebuild(cls: str, attributes: dict):
    klass = _harness.get(cls)
    if not isinstance(klass, type):
        raise ProtocolError(f"no harness class {cls!r}")
    obj = klass.__new__(klass)
    obj.__dict__.update(attributes)
    return obj


def _in(value, path):
    for step in path:
        value = value[step]
    return value


def _paths(value, path=(), out=None):
    out = {} if out is None else out
    if isinstance(value, (torch.Tensor, torch.Generator)):
        out.setdefault(id(value), list(path))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _paths(v, (*path, i), out)
    elif isinstance(value, dict):
        for k, v in value.items():
            if type(k) is str:
                _paths(v, (*path, k), out)
    return out


def _lookup(name: str):
    if name in _harness:
        return _harness[name]
    if _namespace is None or name not in _namespace:
        raise NameError(f"name {name!r} is not defined in the notebook")
    return _namespace[name]


def _target(request: dict):
    if "handle" in request:
        hid = request["handle"]
        if type(hid) is not int or hid not in _objects:
            raise ProtocolError("an unknown handle")
        return _objects[hid]
    name = request.get("name")
    if type(name) is not str:
        raise ProtocolError("a request without a name or handle")
    return _lookup(name)


def _define(source: str, names: list) -> None:
    """Run public harness code in its own namespace, which sees the notebook's names."""
    import math
    import os
    import tempfile

    import torch.nn.functional as F

    space = dict(_namespace or {})
    space.update({"__name__": "grading_harness", "torch": torch, "F": F, "os": os,
                  "tempfile": tempfile, "math": math})
    exec(compile(source, "<grading harness>", "exec"), space)
    for name in names:
        _harness[name] = space[name]


def _error(exc: BaseException) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)
    student = [f for f in frames if f.filename.startswith("<ipython-input-") or
               "/ipykernel_" in f.filename or f.filename.startswith("<cell")]
    where = (f"line {student[-1].lineno}: {student[-1].line}".strip()[:300]
             if student else None)
    message = str(exc) if not isinstance(exc, SystemExit) else f"exit({exc.code!r})"
    return {"error": type(exc).__name__[:100], "message": message[:2000], "where": where}


def _observe_call(target, args: list, kwargs: dict) -> tuple[dict, object, bool]:
    """Call the student's ``target``: the reply item (its result or the error it raised, and
    what became of its arguments), the result itself and whether it raised."""
    try:
        result = target(*args, **kwargs)
    except BaseException as exc:  # the student's error, reported as an observation
        return {"raised": _error(exc), "after": encode(
            [args, kwargs], handles=_keep, harness_classes=_harness)}, None, True
    return {"ok": encode(result, handles=_keep, refs=_paths([args, kwargs]),
                         harness_classes=_harness),
            "after": encode([args, kwargs], handles=_keep, harness_classes=_harness)
            }, result, False


def _chain(step, init, run: dict, decode_args: dict) -> list[dict]:
    """One optimizer run: ``init(param, **init_kwargs)`` first when given (else the run's
    ``state``), then ``step(param, grad, state, **kwargs)`` for each grad, each fed the
    previous result; up to the first error or a result that is not a pair."""
    param = decode(run["param"], **decode_args)
    kwargs = decode(run["kwargs"], **decode_args)
    items = []
    if init is not None:  # the state comes from the rule's init
        item, state, raised = _observe_call(init, [_clone(param)],
                                            decode(run["init_kwargs"], **decode_args))
        items.append(item)
        if raised:
            return items
    else:
        state = decode(run["state"], **decode_args)
    for grad in decode(run["grads"], **decode_args):
        args = [_clone(param), _clone(grad), _clone(state)]
        item, out, raised = _observe_call(step, args, kwargs)
        items.append(item)
        if raised or not (isinstance(out, (tuple, list)) and len(out) == 2):
            break
        param, state = out
    return items


def dispatch(text: str) -> str:
    """Answer one request of the grader (a JSON text); return the reply as a JSON text."""
    global _namespace
    try:
        request = json.loads(text)
        if request.get("protocol") != PROTOCOL:
            raise ProtocolError("protocol version mismatch")
        op = request["op"]
        if _namespace is None:
            from IPython import get_ipython

            shell = get_ipython()
            _namespace = shell.user_ns if shell is not None else sys.modules["__main__"].__dict__
        decode_args = dict(handle=lambda hid, kind: _objects[hid] if hid in _objects else
                           _missing(hid), harness=_rebuild)
        if op == "define":
            _define(request["source"], request["names"])
            return json.dumps({"ok": None})
        if op == "get":
            try:
                value = _lookup(request["name"])
            except NameError as exc:
                return json.dumps({"raised": _error(exc)})
            if callable(value):
                return json.dumps({"ok": {"$": "handle", "id": _keep(value).id,
                                          "kind": "callable"}})
            return json.dumps({"ok": encode(value, handles=_keep)})
        target = _target(request)
        if op == "call":
            args = decode(request["args"], **decode_args)
            kwargs = decode(request["kwargs"], **decode_args)
            return json.dumps(_observe_call(target, args, kwargs)[0])
        if op == "calls":  # a check's cases in one exchange, in order, up to the first error
            results = []
            for args, kwargs in decode(request["calls"], **decode_args):
                item, _, raised = _observe_call(target, args, kwargs)
                results.append(item)
                if raised:
                    break
            return json.dumps({"ok": None, "results": results})
        if op == "iter":
            try:
                return json.dumps({"ok": encode(iter(target), handles=_keep)})
            except BaseException as exc:
                return json.dumps({"raised": _error(exc)})
        if op == "next":  # the iterator's next items, up to the end or the first error
            count = request.get("count", 1)
            if type(count) is not int or not 1 <= count <= MAX_ITEMS:
                raise ProtocolError("a bad count of items")
            results, size = [], 0
            while len(results) < count and size < MAX_PREFETCH_CHARS:
                try:
                    item = next(target)
                except StopIteration:
                    results.append({"stop": True})
                    break
                except BaseException as exc:
                    results.append({"raised": _error(exc)})
                    break
                results.append({"ok": encode(item, handles=_keep)})
                size += len(json.dumps(results[-1]))
            return json.dumps({"ok": None, "results": results})
        if op == "chain":  # optimizer runs: each step fed the previous step's result
            init = _target(request["init"]) if "init" in request else None
            return json.dumps({"ok": None, "results": [
                _chain(target, init, run, decode_args) for run in request["runs"]]})
        if op == "map":
            results = []
            for args in decode(request["args"], **decode_args):
                try:
                    results.append({"ok": encode(target(*args), handles=_keep)})
                except BaseException as exc:
                    results.append({"raised": _error(exc)})
                    break
            return json.dumps({"ok": None, "results": results})
        raise ProtocolError(f"unknown operation {op!r}")
    except ProtocolError as exc:
        return json.dumps({"protocol_error": str(exc)[:2000]})
    except BaseException as exc:  # a fault here is reported, never raised into the notebook
        return json.dumps({"protocol_error": f"{type(exc).__name__}: {exc}"[:2000]})


def _missing(hid):
    raise ProtocolError(f"unknown handle {hid}")
