"""Torch modules to the network IR.

Primary path: ``torch.fx`` symbolic tracing with a tracer that keeps the modules the IR knows (convolutions,
batch norm, linear, activations, pools, flatten, identity, dropout, and the project's ``Zero`` and
``ChannelShuffle``) as leaves, then one run of the traced graph on the example input. That run plays the role of
``torch.fx.passes.shape_prop.ShapeProp`` (it stores the same ``tensor_meta`` on every node; ShapeProp itself is not
used because it prints a traceback to stderr when a node fails), so every layer gets the real shapes, and the
real values of constants (``x * 0``, a reshape target) are known.

Fallback, for modules ``torch.fx`` cannot trace (data-dependent control flow such as ``if x.sum() > 0``): an
eager tracer runs the module once, with forward hooks on the same leaf modules and a
``torch.overrides.TorchFunctionMode`` recording the torch functions and tensor methods called between leaves
(calls made inside a leaf are not recorded); tensors are connected by object identity. Both paths feed the same
operator mapping, so they give the same IR on traceable modules.

The operator mapping itself (which torch call becomes which IR layers) is
:mod:`~nas_latency.frontends.torch_ops`. The module is run in eval mode under ``torch.no_grad()``, with torch's
multi-head-attention fast path off; its training flags are restored afterwards.
"""

from __future__ import annotations

import builtins
import inspect
import logging
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Literal, Sequence

import torch
import torch.fx
from torch import nn
from torch.fx.node import map_aggregate, map_arg
from torch.fx.passes.shape_prop import _extract_tensor_metadata
from torch.overrides import TorchFunctionMode

from nas_latency.errors import InvalidInputError, NasLatencyError
from nas_latency.frontends.conversion import (
    Conversion,
    IRAssembler,
    OnUnsupported,
    Symbol,
    check_on_unsupported,
    has_symbol,
    is_symbol,
    iter_symbols,
)
from nas_latency.frontends.torch_ops import (
    REFLECTED_DUNDERS,
    TorchOps,
    canonical_name,
    has_tensor,
    is_inplace,
    is_leaf_module,
    iter_tensors,
    tensor_shape,
)
from nas_latency.ir import Shape

logger = logging.getLogger(__name__)

TraceMethod = Literal["auto", "fx", "eager"]


# ---- the two tracers ------------------------------------------------------------------------------------------
class _LeafTracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_leaf_module(m)


def _collect_outputs(value: Any) -> list[Symbol]:
    return list(iter_symbols(value))


class _FxRunner(torch.fx.Interpreter):
    """Runs the traced graph once (as ShapeProp does) and converts each node as its real result is known."""

    def __init__(self, gm: torch.fx.GraphModule, ops: TorchOps, input_names: Sequence[str]) -> None:
        super().__init__(gm)
        self.extra_traceback = False  # keep our error messages as they are
        self.ops = ops
        self.input_names = list(input_names)
        self.symbols: dict[torch.fx.Node, Any] = {}
        self.outputs: list[Symbol] = []
        self.input_shapes: list[Shape] = []
        self._placeholders = 0

    def run_node(self, n: torch.fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except NasLatencyError:
            raise
        except Exception as exc:
            node = n.target if n.op == "call_module" else n.name
            raise InvalidInputError(
                f"{self.ops.asm.source}: running node {node!r} on the example input of shape {self.input_shapes} "
                f"failed: {type(exc).__name__}: {exc}"
            ) from exc
        if has_tensor(result):
            n.meta["tensor_meta"] = map_aggregate(
                result, lambda o: _extract_tensor_metadata(o) if isinstance(o, torch.Tensor) else o
            )
        self.symbols[n] = self._symbolic(n, result)
        return result

    def _symbolic(self, n: torch.fx.Node, result: Any) -> Any:
        if n.op == "placeholder":
            index, self._placeholders = self._placeholders, self._placeholders + 1
            if isinstance(result, torch.Tensor):
                return self.ops.asm.input(self.input_names[index], tensor_shape(result))
            return result
        if n.op == "get_attr":
            return result
        lookup: Callable[[torch.fx.Node], Any] = lambda a: self.symbols[a]  # noqa: E731
        args = tuple(map_arg(n.args, lookup))
        kwargs = dict(map_arg(n.kwargs, lookup))
        if n.op == "output":
            self.outputs = _collect_outputs(args[0])
            return None
        if n.op == "call_module":
            assert isinstance(n.target, str)
            module = self.module.get_submodule(n.target)
            symbolic = self.ops.convert(n.target, module, args, kwargs, result)
            target: Any = module
        elif n.target is builtins.getattr:
            if not is_symbol(args[0]) and has_symbol(args[0]):  # a field of a multi-output result
                return getattr(args[0], str(args[1]))
            fname = canonical_name(str(args[1]))
            node = self.ops.node_name(fname) if has_tensor(result) else n.name
            return self.ops.convert(node, fname, args[:1], {}, result)
        else:
            fname = canonical_name(n.target)
            if fname == "getitem" and not is_symbol(args[0]) and has_symbol(args[0]):
                # picks an output of a multi-output call: no layer, and no name taken (the eager tracer sees none)
                return self.ops.convert(n.name, fname, args, kwargs, result)
            node = self.ops.node_name(fname) if has_tensor(result) else n.name
            symbolic = self.ops.convert(node, fname, args, kwargs, result)
            target = n.target
        if is_symbol(symbolic) and n.args and isinstance(n.args[0], torch.fx.Node) and is_inplace(target, kwargs):
            # torch.fx keeps pointing later readers of a mutated tensor at its old value; they read the result
            self.symbols[n.args[0]] = symbolic
        return symbolic


class _EagerRecorder(TorchFunctionMode):
    """Records torch functions and tensor methods called outside leaf modules; leaf modules report through
    forward hooks. Tensors are matched by identity (they are kept alive until the recording ends)."""

    def __init__(self, ops: TorchOps) -> None:
        super().__init__()
        self.ops = ops
        self.depth = 0
        self.symbols: dict[int, Any] = {}
        self._alive: list[torch.Tensor] = []

    def __torch_function__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth == 0 and has_tensor(out):
            out = self._distinct(out, (args, kwargs), is_inplace(func, kwargs))  # the mode is off in this handler
            fname = canonical_name(func)
            node = self.ops.node_name(fname)
            if getattr(func, "__name__", "") in REFLECTED_DUNDERS and len(args) == 2:
                args = (args[1], args[0])  # x.__rsub__(2) is 2 - x: the order torch.fx records
            self.register(out, self.ops.convert(node, fname, self.symbolize(args), self.symbolize(kwargs), out))
        return out

    @staticmethod
    def _distinct(out: Any, inputs: Any, inplace: bool) -> Any:
        """A non-in-place operation that returns its input object itself (``nn.Identity``, eval-mode dropout)
        gets a fresh view of it instead, so that the input and the result stay distinct tensors of the graph.
        An in-place operation keeps the object: later readers of it do read the result."""
        if inplace or not isinstance(out, torch.Tensor) or not any(out is t for t in iter_tensors(inputs)):
            return out
        return out.view_as(out)

    def symbolize(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return self.symbols.get(id(value), value)
        if isinstance(value, list):
            return [self.symbolize(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.symbolize(v) for v in value)
        if isinstance(value, dict):
            return {k: self.symbolize(v) for k, v in value.items()}
        return value

    def register(self, out: Any, symbolic: Any) -> None:
        if isinstance(out, torch.Tensor):
            if is_symbol(symbolic):
                self.symbols[id(out)] = symbolic
                self._alive.append(out)
        elif isinstance(out, (tuple, list)) and isinstance(symbolic, (tuple, list)) and len(out) == len(symbolic):
            for o, s in zip(out, symbolic):
                self.register(o, s)
        elif isinstance(out, dict) and isinstance(symbolic, dict):
            for key, o in out.items():
                self.register(o, symbolic.get(key))

    @contextmanager
    def hooks(self, root: nn.Module, root_name: str) -> Iterator[None]:
        handles = []
        for path, module in root.named_modules():  # the root too (path ""), when it is itself a leaf
            if is_leaf_module(module):
                handles.append(module.register_forward_pre_hook(self._enter, with_kwargs=True))
                handles.append(module.register_forward_hook(self._make_exit(path or root_name), with_kwargs=True))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _enter(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        self.depth += 1

    def _make_exit(self, path: str) -> Callable[..., Any]:
        def exit_hook(module: nn.Module, args: Any, kwargs: Any, output: Any) -> Any:
            if self.depth == 1:
                # still counted as inside the leaf, so that the view is not recorded
                output = self._distinct(output, (args, kwargs), is_inplace(module, kwargs))
            self.depth -= 1
            if self.depth == 0:
                symbolic = self.ops.convert(path, module, self.symbolize(args), self.symbolize(kwargs), output)
                self.register(output, symbolic)
            return output

        return exit_hook


# ---- entry point ---------------------------------------------------------------------------------------------
@contextmanager
def _no_attention_fastpath() -> Iterator[None]:
    """torch's multi-head-attention fast path off (a process-wide flag) while any conversion runs: the first to
    enter saves the flag, the last to leave restores it, so overlapping conversions never leave it off."""
    global _fastpath_users, _fastpath_saved
    with _FASTPATH_LOCK:
        if _fastpath_users == 0:
            _fastpath_saved = torch.backends.mha.get_fastpath_enabled()
            torch.backends.mha.set_fastpath_enabled(False)
        _fastpath_users += 1
    try:
        yield
    finally:
        with _FASTPATH_LOCK:
            _fastpath_users -= 1
            if _fastpath_users == 0:
                torch.backends.mha.set_fastpath_enabled(_fastpath_saved)


_FASTPATH_LOCK = threading.Lock()
_fastpath_users = 0
_fastpath_saved = True


@contextmanager
def _inference(module: nn.Module) -> Iterator[None]:
    """Eval mode, no gradients, and torch's multi-head-attention fast path off: in eval mode
    ``nn.TransformerEncoderLayer`` would otherwise run one fused kernel instead of the layers it is made of."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with torch.no_grad(), _no_attention_fastpath():
            yield
    finally:
        for m, flag in flags:
            m.training = flag


def _example_tuple(example_input: Any) -> tuple[torch.Tensor, ...]:
    inputs = (example_input,) if isinstance(example_input, torch.Tensor) else example_input
    if not isinstance(inputs, (tuple, list)) or not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise InvalidInputError(
            f"example_input must be a tensor or a non-empty tuple of tensors, got {type(example_input).__name__}"
        )
    return tuple(inputs)


def _input_names(module: nn.Module, count: int) -> list[str]:
    names: list[str] = []
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind is p.VAR_POSITIONAL:
            names.extend(f"{p.name}_{i}" for i in range(count - len(names)))
    names = names[:count]
    names += [f"input_{i}" for i in range(len(names), count)]
    return names


def _run_eager(module: nn.Module, inputs: tuple[torch.Tensor, ...], ops: TorchOps, names: Sequence[str]) -> Conversion:
    recorder = _EagerRecorder(ops)
    for tensor, name in zip(inputs, names):
        recorder.symbols[id(tensor)] = ops.asm.input(name, tensor_shape(tensor))
    root_name = type(module).__name__.lower()
    try:
        with recorder.hooks(module, root_name), recorder:
            out = module(*inputs)
    except NasLatencyError:
        raise
    except Exception as exc:
        raise InvalidInputError(
            f"{ops.asm.source}: running the module on the example input of shape "
            f"{[tensor_shape(t) for t in inputs]} failed: {type(exc).__name__}: {exc}"
        ) from exc
    outputs = [recorder.symbols[id(t)] for t in iter_tensors(out) if id(t) in recorder.symbols]
    return ops.asm.finish(outputs)


def _run_fx(
    gm: torch.fx.GraphModule, inputs: tuple[torch.Tensor, ...], ops: TorchOps, names: Sequence[str]
) -> Conversion:
    runner = _FxRunner(gm, ops, names)
    runner.input_shapes = [tensor_shape(t) for t in inputs]
    runner.run(*inputs)
    return ops.asm.finish(runner.outputs)


def torch_to_ir(
    module: nn.Module,
    example_input: torch.Tensor | Sequence[torch.Tensor],
    *,
    name: str | None = None,
    on_unsupported: OnUnsupported = "error",
    method: TraceMethod = "auto",
) -> Conversion:
    """Convert ``module`` to the IR by running it once on ``example_input`` (batch dimension included).

    ``method="auto"`` traces with ``torch.fx`` and falls back to the eager tracer (logged) when the module cannot
    be traced; ``"fx"`` and ``"eager"`` force one path. Layer names are module paths (``features.0.conv``) and
    fx-style function names (``add``, ``add_1``). An operator the IR cannot represent raises
    :class:`~nas_latency.errors.UnsupportedOperatorError` naming the node, or with ``on_unsupported="skip"`` is
    skipped explicitly and listed in :attr:`Conversion.skipped`. A bad example input (wrong shape or type) raises
    :class:`~nas_latency.errors.InvalidInputError`.
    """
    if not isinstance(module, nn.Module):
        raise InvalidInputError(f"expected a torch.nn.Module, got {type(module).__name__}")
    inputs = _example_tuple(example_input)
    check_on_unsupported(on_unsupported)
    if method not in ("auto", "fx", "eager"):
        raise InvalidInputError(f"method must be 'auto', 'fx' or 'eager', got {method!r}")
    net_name = name or type(module).__name__
    names = _input_names(module, len(inputs))
    ops = TorchOps(IRAssembler(net_name, on_unsupported, source=f"torch module {net_name!r}"))
    gm: torch.fx.GraphModule | None = None
    if method != "eager":
        try:
            gm = torch.fx.GraphModule(module, _LeafTracer().trace(module), class_name=type(module).__name__)
        except Exception as exc:
            if method == "fx":
                raise InvalidInputError(
                    f"torch.fx cannot trace module {net_name!r}: {type(exc).__name__}: {exc}"
                ) from exc
            logger.info(
                "torch.fx cannot trace module %r (%s: %s); falling back to the eager tracer",
                net_name, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "",
            )
    with _inference(module):
        if gm is not None:
            return _run_fx(gm, inputs, ops, names)
        return _run_eager(module, inputs, ops, names)
