"""Properties every optimizer in the registry must have, driven by `configs.py`.

Nothing here names an optimizer: a new entry in `OPTIMIZERS` gets every test. Where
torch.optim has the optimizer, torch (live) decides which hyperparameter values are
valid and how an invalid one is worded; our own earlier output is never the reference.
"""

from __future__ import annotations

import inspect
import json
import math
import struct
from typing import Any

import numpy as np
import orjson
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service import optim
from service.optim import OPTIMIZERS, HyperparameterError, State, StateError
from service.optim import state as codec
from service.optim.spec import Bound, Hyper, Optimizer

from .configs import CONVERGE, FACTOR, STEPS, Bowl, configs
from .reference import TORCH_CASES

NAMES = list(OPTIMIZERS)
DTYPES = [np.dtype(np.float32), np.dtype(np.float64)]
# Kernels compile on first use (then come from numba's disk cache): no deadline.
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(name: str, given_hp: dict[str, Any], dtype: np.dtype, dim: int) -> tuple[Optimizer, dict[str, Any], State]:
    opt = optim.get(name)
    hp = opt.resolve(given_hp)
    return opt, hp, opt.init(dim, dtype, hp)


def assert_same_state(a: State, b: State) -> None:
    """Equal to the last bit: step, vector names, dtypes and bytes, scalars."""
    assert a.step == b.step
    assert sorted(a.vectors) == sorted(b.vectors)
    for k, v in a.vectors.items():
        assert v.dtype == b.vectors[k].dtype and v.shape == b.vectors[k].shape, k
        assert v.tobytes() == b.vectors[k].tobytes(), k
    assert sorted(a.scalars) == sorted(b.scalars)
    for k, x in a.scalars.items():
        assert float(x).hex() == float(b.scalars[k]).hex(), k


# --- apply: dtypes, shapes, in-place updates, grads untouched -----------------------


def _elements(dtype: np.dtype, low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, width=8 * dtype.itemsize)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(data=st.data())
def test_apply_updates_in_place_and_keeps_dtype(name: str, data: st.DataObject) -> None:
    opt = optim.get(name)
    given_hp = data.draw(st.sampled_from(configs(opt)), label="config")
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    dim = data.draw(st.integers(1, 40), label="dim")
    params = data.draw(hnp.arrays(dtype, dim, elements=_elements(dtype, -10, 10)), label="params")
    # Bounded away from zero so that every optimizer must move the parameters.
    magnitude = _elements(dtype, 1 / 64, 10)
    grads = data.draw(hnp.arrays(dtype, dim, elements=st.one_of(magnitude, magnitude.map(lambda x: -x))), label="grads")
    # The service decodes gradients with np.frombuffer, which gives read-only arrays.
    grads.flags.writeable = data.draw(st.booleans(), label="grads writable")
    opt, hp, state = build(name, given_hp, dtype, dim)

    for _ in range(data.draw(st.integers(1, 3), label="steps")):
        grads_before, params_before = grads.copy(), params.copy()
        arrays_before = dict(state.vectors)
        step_before = state.step
        optim.apply(opt, hp, params, grads, state)

        assert grads.tobytes() == grads_before.tobytes(), "grads were written"
        assert params.dtype == dtype and params.shape == (dim,)
        assert np.isfinite(params).all()
        assert (params != params_before).any(), "params were not updated in place"
        assert state.step == step_before + 1
        # A vector may first appear at a step (torch creates SGD's momentum_buffer from
        # the first gradient), but one that exists is updated where it lies.
        assert set(arrays_before) <= set(state.vectors) <= set(opt.vectors)
        for k, v in state.vectors.items():
            assert k not in arrays_before or v is arrays_before[k], f"state.{k} was replaced by a new array"
            assert v.dtype == dtype and v.shape == (dim,), k
        assert set(state.scalars) <= set(opt.scalars)


# --- state codecs: bit-exact round trips and identical continuation ---------------------


def _json_round_trip(opt: Optimizer, state: State, dtype: np.dtype, dim: int) -> State:
    wire = orjson.dumps(codec.to_json(state), option=orjson.OPT_SERIALIZE_NUMPY)
    return codec.from_json(orjson.loads(wire), state.step, dtype, dim, opt.vectors, opt.scalars)


def _bytes_round_trip(state: State, dtype: np.dtype, dim: int) -> State:
    decoded, dt, d = codec.from_bytes(codec.to_bytes(state, dtype, dim))
    assert dt == dtype and d == dim
    return decoded


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(data=st.data())
def test_state_round_trips_bit_for_bit_and_continues_identically(name: str, data: st.DataObject) -> None:
    opt = optim.get(name)
    given_hp = data.draw(st.sampled_from(configs(opt)), label="config")
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    dim = data.draw(st.integers(1, 40), label="dim")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    opt, hp, state = build(name, given_hp, dtype, dim)
    params = rng.normal(size=dim).astype(dtype)
    for _ in range(data.draw(st.integers(0, 6), label="steps before")):
        optim.apply(opt, hp, params, rng.normal(size=dim).astype(dtype), state)

    copies = [_bytes_round_trip(state, dtype, dim), _json_round_trip(opt, state, dtype, dim)]
    for copy in copies:
        assert_same_state(copy, state)

    runs = [(params, state)] + [(params.copy(), copy) for copy in copies]
    for _ in range(3):
        g = rng.normal(size=dim).astype(dtype)
        for p, s in runs:
            optim.apply(opt, hp, p, g, s)
        for p, s in runs[1:]:
            assert p.tobytes() == params.tobytes()
            assert_same_state(s, state)


# --- malformed state --------------------------------------------------------------------


def _blob(name: str, dtype: np.dtype, dim: int = 3) -> bytes:
    opt, hp, state = build(name, {}, dtype, dim)
    params = np.linspace(-1, 1, dim).astype(dtype)
    for _ in range(2):
        optim.apply(opt, hp, params, np.linspace(1, 2, dim).astype(dtype), state)
    return codec.to_bytes(state, dtype, dim)


def _rejected(blob: bytes) -> StateError:
    with pytest.raises(StateError) as err:
        codec.from_bytes(blob)
    assert err.value.field == "state"
    return err.value


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_state_bytes_bad_magic_and_version(name: str, dtype: np.dtype) -> None:
    blob = _blob(name, dtype)
    codec.from_bytes(blob)  # the untouched blob decodes
    assert "magic" in _rejected(b"PNG\x89" + blob[4:]).message
    for version in (0, codec.VERSION + 1, 65535):
        bad = blob[:4] + struct.pack("<H", version) + blob[6:]
        assert "version" in _rejected(bad).message


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_state_bytes_truncated_or_padded(name: str, dtype: np.dtype) -> None:
    blob = _blob(name, dtype)
    for cut in range(len(blob)):  # inside the prefix, the header and the vectors
        _rejected(blob[:cut])
    _rejected(blob + b"\x00")


def _bad_vector(dim: int) -> st.SearchStrategy[Any]:
    zeros = [0.0] * dim
    poisoned = st.tuples(st.integers(0, dim - 1), st.sampled_from([math.nan, math.inf, -math.inf, None])).map(
        lambda iv: zeros[: iv[0]] + [iv[1]] + zeros[iv[0] + 1 :]
    )
    return st.one_of(
        st.sampled_from([zeros[1:], zeros + [0.0], [], [zeros], "0.0", {"0": 0.0}, 0.0, True, None, ["x"] * dim]),
        poisoned,
    )


BAD_SCALAR = st.sampled_from([math.nan, math.inf, -math.inf, "1.0", True, None, [1.0], {}])


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(data=st.data())
def test_bad_json_state_names_the_entry(name: str, data: st.DataObject) -> None:
    opt = optim.get(name)
    dim, dtype = 4, data.draw(st.sampled_from(DTYPES), label="dtype")
    # The configuration with the most state, after one step.
    given_hp = max(configs(opt), key=lambda g: len(build(name, g, dtype, dim)[2].vectors))
    opt, hp, state = build(name, given_hp, dtype, dim)
    optim.apply(opt, hp, np.ones(dim, dtype), np.ones(dim, dtype), state)
    base = orjson.loads(orjson.dumps(codec.to_json(state), option=orjson.OPT_SERIALIZE_NUMPY))
    assert_same_state(codec.from_json(base, state.step, dtype, dim, opt.vectors, opt.scalars), state)

    entries = [("vector", v) for v in opt.vectors] + [("scalar", s) for s in opt.scalars] + [("unknown", None)]
    kind, entry = data.draw(st.sampled_from(entries + [("step", "step")]), label="entry")
    if kind == "vector":
        value = data.draw(_bad_vector(dim), label="value")
    elif kind == "scalar":
        value = data.draw(BAD_SCALAR, label="value")
    elif kind == "step":
        value = data.draw(st.sampled_from([state.step + 1, state.step - 1, str(state.step), None, True]))
    else:
        known = {*opt.vectors, *opt.scalars, "step"}
        entry = data.draw(st.text(min_size=1, max_size=12).filter(lambda s: s not in known), label="entry")
        value = 0.0
    with pytest.raises(StateError) as err:
        codec.from_json({**base, entry: value}, state.step, dtype, dim, opt.vectors, opt.scalars)
    assert err.value.field == f"state.{entry}"


# --- convergence ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_converges_on_a_convex_bowl(name: str, dtype: np.dtype) -> None:
    opt = optim.get(name)
    # Every configuration in float64; float32 (whose arithmetic the parity tests cover)
    # with the defaults, to keep the file fast.
    for given_hp in configs(opt) if dtype == np.float64 else [{}]:
        given_hp = {**given_hp, **CONVERGE.get(name, {})}
        opt, hp, state = build(name, given_hp, dtype, 32)
        bowl = Bowl(32, dtype, seed=0)
        sign = -1.0 if hp.get("maximize") else 1.0  # maximizing -f has the same minimum
        x = bowl.x0.copy()
        for _ in range(STEPS):
            optim.apply(opt, hp, x, (sign * bowl.grad(x)).astype(dtype), state)
        factor = bowl.loss(bowl.x0) / max(bowl.loss(x), 1e-300)
        assert factor >= FACTOR, f"{name} {given_hp}: loss fell only {factor:.3g}x in {STEPS} steps"


# --- hyperparameter validation ----------------------------------------------------------


def _torch_kwargs(name: str) -> set[str]:
    if name not in TORCH_CASES:
        return set()
    return set(inspect.signature(TORCH_CASES[name].torch_cls.__init__).parameters)


def _torch_error(name: str, given_hp: dict[str, Any]) -> Exception | None:
    """torch's constructor on one parameter: its error, or None when it accepts.

    torch rejects a bad value with ValueError, a None where it needs a number with
    whatever the comparison raises (TypeError)."""
    try:
        TORCH_CASES[name].torch_cls([torch.zeros(2, requires_grad=True)], **given_hp)
    except (ValueError, TypeError) as e:
        return e
    return None


def _violating(h: Hyper, b: Bound) -> st.SearchStrategy[float | int]:
    if h.kind == "int":
        v = math.floor(b.value) if b.op in (">=", ">") else math.ceil(b.value)
        return {">=": st.integers(max_value=v - (v == b.value)), ">": st.integers(max_value=v),
                "<=": st.integers(min_value=v + (v == b.value)), "<": st.integers(min_value=v)}[b.op]
    finite = {"allow_nan": False, "allow_infinity": False}
    return {
        ">=": st.floats(max_value=b.value, exclude_max=True, **finite),
        ">": st.floats(max_value=b.value, **finite),
        "<=": st.floats(min_value=b.value, exclude_min=True, **finite),
        "<": st.floats(min_value=b.value, **finite),
    }[b.op]


def _with_element(h: Hyper, index: int | None, value: Any) -> Any:
    if index is None:
        return value
    pair = list(h.default)
    pair[index] = value
    return pair


OUT_OF_RANGE = [
    (o.name, h.name, k, i)
    for o in OPTIMIZERS.values()
    for h in o.hypers
    for k in range(len(h.bounds))
    for i in ((0, 1) if h.kind == "pair" else (None,))
]


@pytest.mark.parametrize(("name", "hyper", "bound", "index"), OUT_OF_RANGE)
@PROPERTY
@given(data=st.data())
def test_out_of_range_rejected_as_torch_does(name: str, hyper: str, bound: int, index: int | None, data: st.DataObject) -> None:
    opt = optim.get(name)
    h = opt.hyper_by_name[hyper]
    value = _with_element(h, index, data.draw(_violating(h, h.bounds[bound]), label="value"))
    with pytest.raises(HyperparameterError) as err:
        opt.resolve({hyper: value})
    assert err.value.field == hyper
    if hyper in _torch_kwargs(name):
        theirs = _torch_error(name, {hyper: value})
        assert isinstance(theirs, ValueError), f"torch accepts {hyper}={value!r}: the bound {h.bounds[bound]} is not torch's"
        assert err.value.message == str(theirs)


def _numbers(h: Hyper) -> st.SearchStrategy[Any]:
    """Values near every bound and default, and anywhere, for agreement with torch."""
    if h.kind == "int":
        marks = [int(b.value) + d for b in h.bounds for d in (-1, 0, 1)]
        return st.one_of(st.sampled_from(marks or [0]), st.integers(-(10**6), 10**6))
    marks = [0.0, -0.0, 0.5, 1.0, -1.0, 2.0]
    for b in h.bounds:
        marks += [b.value, float(np.nextafter(b.value, -np.inf)), float(np.nextafter(b.value, np.inf))]
    defaults = h.default if h.kind == "pair" else (h.default,)
    marks += [float(d) for d in defaults if d is not None]
    # Beyond about 1e38 torch's constructor fails filling float32 state: not a bound.
    anything = st.floats(-1e30, 1e30)
    one = st.one_of(st.sampled_from(marks), anything, *([st.none()] if h.nullable else []))
    if h.kind != "pair":
        return one
    # One element at a time: with two bad elements, which one is reported is arbitrary.
    return st.tuples(st.sampled_from([0, 1]), one).map(lambda iv: _with_element(h, *iv))


TORCH_NUMERIC = [
    (o.name, h.name)
    for o in OPTIMIZERS.values()
    for h in o.hypers
    if h.kind != "bool" and h.name in _torch_kwargs(o.name)
]


@pytest.mark.parametrize(("name", "hyper"), TORCH_NUMERIC)
@PROPERTY
@given(data=st.data())
def test_accepts_exactly_what_torch_accepts(name: str, hyper: str, data: st.DataObject) -> None:
    """Covers checks that bounds cannot express (e.g. one pair element against the other)."""
    opt = optim.get(name)
    value = data.draw(_numbers(opt.hyper_by_name[hyper]), label=hyper)
    theirs = _torch_error(name, {hyper: value})
    try:
        opt.resolve({hyper: value})
    except HyperparameterError as ours:
        assert theirs is not None, f"torch accepts {hyper}={value!r}, we reject: {ours.message}"
        if isinstance(theirs, ValueError):
            assert ours.message == str(theirs)
        assert ours.field == hyper
    else:
        assert theirs is None, f"torch rejects {hyper}={value!r} ({theirs}), we accept"


def _wrong_types(h: Hyper) -> list[Any]:
    nan, inf = math.nan, math.inf
    if h.kind == "bool":
        return [1, 0, 1.0, "true", None, [True], {}]
    if h.kind == "pair":
        good = [d if d is not None else 0.5 for d in h.default]
        return [
            0.5, [good[0]], [*good, good[1]], "ab", {"0": 1}, None,
            [good[0], "x"], [True, good[1]], [good[0], [1.0]],
            [nan, good[1]], [good[0], inf], [-inf, good[1]],
            *([] if h.nullable else [[None, good[1]]]),
        ]
    values = ["0.1", [0.1], {"v": 1}, True, False, nan, inf, -inf, *([] if h.nullable else [None])]
    return values + ([1.5, "1"] if h.kind == "int" else [])


WRONG_TYPE = [(o.name, h.name, repr(v)) for o in OPTIMIZERS.values() for h in o.hypers for v in _wrong_types(h)]


@pytest.mark.parametrize(("name", "hyper", "value"), WRONG_TYPE)
def test_wrong_type_rejected(name: str, hyper: str, value: str) -> None:
    opt = optim.get(name)
    bad = next(v for v in _wrong_types(opt.hyper_by_name[hyper]) if repr(v) == value)
    with pytest.raises(HyperparameterError) as err:
        opt.resolve({hyper: bad})
    assert err.value.field == hyper


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(key=st.text(min_size=1, max_size=20))
def test_unknown_hyperparameter_rejected(name: str, key: str) -> None:
    opt = optim.get(name)
    if key in opt.hyper_by_name or key == "name":
        return
    with pytest.raises(HyperparameterError) as err:
        opt.resolve({key: 0.1})
    assert err.value.field == key


@PROPERTY
@given(name=st.one_of(st.text(max_size=20), st.none(), st.integers(), st.lists(st.text(), max_size=2)))
def test_unknown_optimizer_rejected(name: Any) -> None:
    if isinstance(name, str) and name in OPTIMIZERS:
        return
    with pytest.raises(HyperparameterError) as err:
        optim.get(name)
    assert err.value.field == "name"


# --- describe ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_describe_is_json_and_lists_every_hyper_and_state_name(name: str) -> None:
    opt = optim.get(name)
    described = opt.describe()
    assert json.loads(json.dumps(described)) == orjson.loads(orjson.dumps(described))
    assert described["name"] == name
    assert [h["name"] for h in described["hyperparameters"]] == [h.name for h in opt.hypers]
    for h in described["hyperparameters"]:
        assert {"type", "default", "constraint", "description"} <= set(h)
    assert described["state"] == list(opt.vectors)
    assert described["state_scalars"] == list(opt.scalars)
    for given_hp in configs(opt):
        opt, hp, state = build(name, given_hp, np.dtype(np.float64), 3)
        optim.apply(opt, hp, np.ones(3), np.ones(3), state)
        assert set(state.vectors) <= set(described["state"]), given_hp
        assert set(state.scalars) <= set(described["state_scalars"]), given_hp
