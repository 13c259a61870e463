"""The trusted verdict (instructor/trusted.py), driven in-process through ``LocalChannel``: the
same wire format and dispatcher a kernel runs, without starting one. What a student who has read
this repository would try against the new design, and what the design guarantees:

* the hidden tests and quiz keys never travel to the student's side;
* the cases are fresh per run: a lookup table of one run's answers fails the next;
* a value that lies about itself (a ``str`` subclass equal to everything, a tensor subclass)
  arrives as plain data;
* warnings and stderr from student code decide nothing;
* a malformed reply, a timeout or a dead kernel scores 0 with a message and a flag;
* the torch-use policy (instructor/policy.py) reads through aliases.
"""

from __future__ import annotations

import json
import random
import re
import sys
import warnings
from pathlib import Path

import pytest
import torch

from instructor import policy, trusted
from nnbolts import activations
from nnbolts.grading import _remote

ROOT = Path(__file__).resolve().parents[1]


wire = _remote.wire


def _blocks(assignment: str) -> dict[str, str]:
    """grade_id -> hidden-test block of a solution file."""
    text = next((ROOT / "solutions" / assignment).glob("*.md")).read_text()
    found = {}
    for cell in re.findall(r"```\{code-cell\}.*?```", text, re.S):
        gid = re.search(r"grade_id: (\S+)", cell)
        block = trusted.hidden_block(cell)
        if gid and block:
            found[gid.group(1)] = block
    return found


ACTIVATIONS = _blocks("01-activations")


def _judge(block, namespace, seed=0, channel=None):
    channel = channel or trusted.LocalChannel(namespace)
    return trusted.judge(block, channel, seed=seed), channel


def test_a_correct_function_passes_and_a_wrong_one_fails_with_a_hint():
    verdict, _ = _judge(ACTIVATIONS["test_sigmoid"], {"sigmoid": activations.sigmoid})
    assert verdict.passed, verdict.message
    verdict, _ = _judge(ACTIVATIONS["test_sigmoid"], {"sigmoid": lambda z: 1 / (1 + torch.exp(z))})
    assert not verdict.passed and "sigmoid" in verdict.message and "expected" in verdict.message


def test_hidden_tests_and_quiz_keys_never_reach_the_kernel():
    """Every request the kernel receives, for a code test and a quiz: none holds the test's
    source, the reference's name or the quiz's key."""
    block = ACTIVATIONS["test_q_saturated"]
    key = re.search(r'answer == "(\w)"', block).group(1)
    seen = []

    class Recording(trusted.LocalChannel):
        def request(self, message, timeout):
            seen.append(json.dumps(message))
            return super().request(message, timeout)

    for gid, namespace in [("test_q_saturated", {"saturated_sigmoid_derivative": lambda: key}),
                           ("test_sigmoid", {"sigmoid": activations.sigmoid})]:
        verdict, _ = _judge(ACTIVATIONS[gid], None, channel=Recording(namespace))
        assert verdict.passed, verdict.message
    assert seen
    for text in seen:
        assert "check_elementwise" not in text and "HIDDEN" not in text
        assert f'== \\"{key}\\"' not in text and "not the right choice" not in text


def test_a_lookup_table_of_one_run_fails_the_next():
    """The student records the reference's answers of a run (as if the hidden inputs were
    known) and replays them: with another run's seed the inputs are new."""
    table = {}

    def recording(z):
        out = activations.sigmoid(z)
        table[(z.dtype, z.device.type, tuple(z.shape), z.cpu().numpy().tobytes())] = out.clone()
        return out

    assert _judge(ACTIVATIONS["test_sigmoid"], {"sigmoid": recording}, seed=0)[0].passed

    def replaying(z):
        key = (z.dtype, z.device.type, tuple(z.shape), z.cpu().numpy().tobytes())
        return table[key].clone() if key in table else torch.zeros_like(z)

    assert _judge(ACTIVATIONS["test_sigmoid"], {"sigmoid": replaying}, seed=0)[0].passed
    verdict, _ = _judge(ACTIVATIONS["test_sigmoid"], {"sigmoid": replaying}, seed=987654)
    assert not verdict.passed


def test_values_that_lie_about_themselves_arrive_as_plain_data():
    class Agreeable(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    block = ACTIVATIONS["test_q_saturated"]
    verdict, _ = _judge(block, {"saturated_sigmoid_derivative": lambda: Agreeable("Z")})
    assert not verdict.passed

    class Lying(torch.Tensor):
        def __eq__(self, other):
            return True

    def sigmoid(z):
        return torch.zeros_like(z).as_subclass(Lying)

    assert not _judge(ACTIVATIONS["test_sigmoid"], {"sigmoid": sigmoid})[0].passed


def test_warnings_and_stderr_from_student_code_cost_nothing(capsys):
    def sigmoid(z):
        warnings.warn("a harmless warning", UserWarning, stacklevel=1)
        print("noise on stderr", file=sys.stderr)
        return activations.sigmoid(z)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verdict, _ = _judge(ACTIVATIONS["test_sigmoid"], {"sigmoid": sigmoid})
    assert verdict.passed, verdict.message


class _Broken(trusted.LocalChannel):
    def __init__(self, namespace, reply=None, error=None):
        super().__init__(namespace)
        self.reply, self.error = reply, error

    def request(self, message, timeout):
        if message.get("op") in ("call", "calls"):
            if self.error is not None:
                raise self.error
            if message["op"] == "calls" and "protocol_error" not in self.reply:
                return {"ok": None, "results": [self.reply] * len(message["calls"])}
            return self.reply
        return super().request(message, timeout)


class _BrokenBatch(trusted.LocalChannel):
    """A kernel whose answer to a batch of calls is malformed as a whole."""

    def __init__(self, namespace, make_reply):
        super().__init__(namespace)
        self.make_reply = make_reply

    def request(self, message, timeout):
        if message.get("op") == "calls":
            return self.make_reply(len(message["calls"]))
        return super().request(message, timeout)


@pytest.mark.parametrize("make_reply", [
    lambda n: {"ok": None, "results": "all good"},
    lambda n: {"ok": None, "results": []},
    lambda n: {"ok": None, "results": [{"ok": 0.5}] * (n + 1)},
    lambda n: {"ok": None, "results": [["ok", 0.5]] * n},
    lambda n: {"ok": None},
], ids=["not-a-list", "empty", "too-many", "not-objects", "no-results"])
def test_a_malformed_batch_scores_zero_and_is_flagged(make_reply):
    channel = _BrokenBatch({"sigmoid": activations.sigmoid}, make_reply)
    verdict, _ = _judge(ACTIVATIONS["test_sigmoid"], None, channel=channel)
    assert not verdict.passed
    assert verdict.flag and "observation" in verdict.flag


@pytest.mark.parametrize("reply", [
    {"ok": {"$": "tensor", "dtype": "float32", "shape": [3], "device": "cpu", "data": "!!"}},
    {"ok": {"$": "tensor", "dtype": "float99", "shape": [3], "device": "cpu", "data": ""}},
    {"ok": {"$": "tensor", "dtype": "float32", "shape": [10**9], "device": "cpu", "data": ""}},
    {"ok": {"$": "pickle", "v": "gASV"}},
    {"ok": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]},
    {"nothing": 1},
    {"raised": "not a dict"},
    {"protocol_error": "the kernel says no"},
], ids=["bad-base64", "bad-dtype", "huge", "unknown-tag", "too-deep", "no-result",
        "bad-error", "protocol-error"])
def test_a_malformed_reply_scores_zero_and_is_flagged(reply):
    channel = _Broken({"sigmoid": activations.sigmoid}, reply=reply)
    verdict, _ = _judge(ACTIVATIONS["test_sigmoid"], None, channel=channel)
    assert not verdict.passed
    assert verdict.flag and "observation" in verdict.flag


def test_a_timeout_is_a_failure_and_a_dead_kernel_is_flagged():
    channel = _Broken({"sigmoid": activations.sigmoid}, error=TimeoutError("no answer"))
    verdict, _ = _judge(ACTIVATIONS["test_sigmoid"], None, channel=channel)
    assert not verdict.passed and "did not finish" in verdict.message
    channel = _Broken({"sigmoid": activations.sigmoid},
                      error=_remote.ObservationError("the kernel died"))
    verdict, _ = _judge(ACTIVATIONS["test_sigmoid"], None, channel=channel)
    assert not verdict.passed and "died" in verdict.flag


def test_a_missing_function_is_a_name_error_with_advice():
    verdict, _ = _judge(ACTIVATIONS["test_sigmoid"], {})
    assert not verdict.passed and verdict.ename == "NameError"
    assert "sigmoid" in verdict.message


def test_in_place_results_and_returned_arguments_come_back():
    """An initializer fills the tensor it was given and returns it: the grader's own tensor is
    filled and ``returned is tensor`` holds (the engine checks both)."""
    channel = trusted.LocalChannel({"fill_": lambda t: t.fill_(3.0)})
    channel.install()
    token = _remote.CHANNEL.set(channel)
    try:
        fill_ = _remote.fetch("fill_")
        t = torch.zeros(4)
        assert fill_(t) is t and t.tolist() == [3.0] * 4
    finally:
        _remote.CHANNEL.reset(token)


def test_the_wire_decoder_raises_only_protocol_errors_on_garbage():
    """200 random JSON values and mutations of valid messages: the decoder either returns a
    value or raises ProtocolError, nothing else (it never runs code)."""
    rng = random.Random(7)
    valid = wire.encode({"a": torch.arange(6.0).reshape(2, 3), "b": (1, 2.5, None),
                         "c": {1, 2}, "g": torch.Generator().manual_seed(1)})
    atoms = [None, True, 0, -1, 2**70, 1.5, "", "$", "tensor", [], {}, "A" * 10,
             {"$": "tensor"}, {"$": "ref", "path": [0]}, {"$": "harness", "cls": "X", "v": {}}]

    def mutate(x, depth=0):
        if depth > 4 or rng.random() < 0.2:
            return rng.choice(atoms)
        if isinstance(x, dict):
            y = {k: mutate(v, depth + 1) if rng.random() < 0.5 else v for k, v in x.items()}
            if rng.random() < 0.3:
                y[rng.choice(["$", "dtype", "shape", "data", "v", "k"])] = rng.choice(atoms)
            return y
        if isinstance(x, list):
            return [mutate(v, depth + 1) for v in x]
        return rng.choice(atoms)

    for _ in range(200):
        data = json.loads(json.dumps(mutate(valid)))
        try:
            wire.decode(data)
        except wire.ProtocolError:
            pass


@pytest.mark.parametrize("source, gid, zeroed", [
    ("def adam_step(p, g, s, **k):\n    return torch.optim.Adam([p])\n", "test_adam", True),
    ("import torch.optim as O\n\ndef adam_step(p, g, s, **k):\n    return O.Adam([p])\n",
     "test_adam", True),
    ("from torch.optim import Adam as A\n\ndef helper():\n    return A\n\n\n"
     "def adam_step(p, g, s, **k):\n    return helper()\n", "test_adam", True),
    ("def adam_step(p, g, s, **k):\n    return torch._fused_adam_\n", "test_adam", True),
    ("def adam_step(p, g, s, **k):\n    return p - 0.1 * g, s\n", "test_adam", False),
])
def test_the_torch_use_policy_reads_through_aliases(source, gid, zeroed):
    tests = {"test_adam": "check_rule(adam_init, adam_step)", "test_other": "check(other)"}
    found = policy.check("04-adaptive-optimizers", [source], tests)
    assert (gid in found.zero) is zeroed
    assert "test_other" not in found.zero


def test_the_policy_names_the_activation_and_flags_computed_names():
    found = policy.check("01-activations", ["sigmoid = torch.sigmoid\n\ndef relu(z):\n"
                                            "    return z.clamp(min=0)\n"],
                         {"test_sigmoid": "check(sigmoid)", "test_relu": "check(relu)"})
    assert set(found.zero) == {"test_sigmoid"}
    found = policy.check("04-adaptive-optimizers",
                         ["import importlib\n_o = importlib.import_module('nnb' + 'olts.optim')\n"],
                         {})
    assert any("run time" in f for f in found.flags)


def test_an_optimizer_rule_is_observed_in_one_exchange_and_a_bad_chain_is_refused():
    """check_rule asks for every trajectory's init and steps at once (a round trip per call
    made assignment 04 cost 739 requests a notebook), with the same verdicts; a malformed chain
    scores 0 and is flagged like any malformed reply."""
    import nnbolts.optim as O

    block = _blocks("04-adaptive-optimizers")["test_adam"]
    namespace = {"adam_init": O.adam_init, "adam_step": O.adam_step}
    verdict, channel = _judge(block, namespace)
    assert verdict.passed, verdict.message
    # fetching adam_init, adam_step and the helpers the block reads, then one chain per check
    assert channel.requests <= 6, channel.requests

    def off_by_one(param, grad, state, **kw):
        new_param, new_state = O.adam_step(param, grad, state, **kw)
        return new_param, {**new_state, "step": new_state["step"] + 1}

    verdict, _ = _judge(block, {"adam_init": O.adam_init, "adam_step": off_by_one})
    assert not verdict.passed and "step" in verdict.message

    class BadChain(trusted.LocalChannel):
        def request(self, message, timeout):
            if message.get("op") == "chain":
                return {"ok": None, "results": ["not a step"]}
            return super().request(message, timeout)

    verdict, _ = _judge(block, None, channel=BadChain(namespace))
    assert not verdict.passed and verdict.flag and "observation" in verdict.flag

    class ShortChain(trusted.LocalChannel):  # one run's steps missing
        def request(self, message, timeout):
            reply = super().request(message, timeout)
            if message.get("op") == "chain":
                reply["results"] = reply["results"][:-1]
            return reply

    verdict, _ = _judge(block, None, channel=ShortChain(namespace))
    assert not verdict.passed and verdict.flag and "observation" in verdict.flag


def test_a_rule_check_that_runs_past_its_time_is_made_run_by_run():
    """All of a rule check's runs go to the kernel in one exchange; when that exchange runs
    past one call's time limit the runs are made one by one again (same verdict when each fits),
    and a run that still does not finish is a failure that names the limit."""
    import nnbolts.optim as O

    block = _blocks("04-adaptive-optimizers")["test_adam"]
    namespace = {"adam_init": O.adam_init, "adam_step": O.adam_step}

    class Slow(trusted.LocalChannel):
        def __init__(self, namespace, most_runs):
            super().__init__(namespace)
            self.most_runs = most_runs

        def request(self, message, timeout):
            if message.get("op") == "chain" and len(message["runs"]) > self.most_runs:
                raise TimeoutError(f"no answer within {timeout} s")
            return super().request(message, timeout)

    verdict, _ = _judge(block, None, channel=Slow(namespace, most_runs=1))
    assert verdict.passed, verdict.message
    verdict, _ = _judge(block, None, channel=Slow(namespace, most_runs=0))
    assert not verdict.passed and "did not finish within" in verdict.message, verdict.message
    assert not verdict.flag
