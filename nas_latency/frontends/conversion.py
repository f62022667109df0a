"""What a frontend returns, and the assembler every frontend builds its IR with.

A frontend walks a framework graph (a traced torch module, an ONNX graph) node by node and tells an
:class:`IRAssembler` what each node computes. The assembler owns the policy for operators the IR cannot represent,
so that every frontend applies it the same way:

* An unsupported node is *deferred*: its outputs become :class:`Deferred` placeholders. Nothing happens until a
  layer (or a network output) reads one of them.
* When one is read, ``on_unsupported="error"`` raises :class:`UnsupportedOperatorError` naming the node and the
  operator. ``on_unsupported="skip"`` skips the node explicitly: if its output has the shape of its (first tensor)
  input, readers are wired to that input; otherwise the output becomes a ``RESHAPE`` layer (a shape change with no
  cost). Either way the node is listed in :attr:`Conversion.skipped` -- never a silent 0.
* An unsupported node whose result no layer reads (dead code, or a value that only feeds Python control flow such
  as ``if x.sum() > 0``) is not part of the network; it is still listed in :attr:`Conversion.skipped`, with that
  reason, in both modes.

Parts of a tensor (:meth:`IRAssembler.part`: a slice, a select, one output of a split, chunk or unbind) are
*pending* too, but they are supported: a :class:`Pending` becomes its ``SLICE`` layer when a layer or an output
first reads it. The frameworks return such parts as views, copied only when a reader needs them, so a part nobody
reads (the unused half of a ``chunk``) is no layer; it is not a skipped node either, since nothing the network
computes is left out. Every other supported operator is a layer whether or not it is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Sequence, get_args

from nas_latency.errors import InvalidInputError, UnsupportedOperatorError
from nas_latency.ir import Layer, Network, NetworkBuilder, OpKind, Shape, numel
from nas_latency.ir.shapes import check_slice

logger = logging.getLogger(__name__)

OnUnsupported = Literal["error", "skip"]

#: reason recorded for unsupported nodes whose result never reaches a layer or an output
UNUSED_REASON = "its result is read by no layer or output (dead code or control flow only); not part of the network"


@dataclass(frozen=True, slots=True)
class SkippedNode:
    """A framework node that is not in the IR, and why."""

    node: str
    operator: str
    reason: str


@dataclass(frozen=True)
class Conversion:
    """A frontend's result: the network, and every node it left out (empty when the conversion is exact)."""

    network: Network
    skipped: tuple[SkippedNode, ...] = ()


def check_on_unsupported(value: object) -> OnUnsupported:
    """Validate an ``on_unsupported`` argument."""
    if value not in get_args(OnUnsupported):
        raise InvalidInputError(f"on_unsupported must be one of {list(get_args(OnUnsupported))}, got {value!r}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class TensorRef:
    """An activation tensor of the network being built: the IR name of its producer and its shape."""

    name: str
    shape: Shape


@dataclass(eq=False)
class _UnsupportedNode:
    node: str
    operator: str
    reason: str
    source: "Symbol | None"
    recorded: bool = False


@dataclass(eq=False)
class Deferred:
    """One output of an unsupported node; it becomes an error, an alias or a RESHAPE layer when read."""

    origin: _UnsupportedNode
    shape: Shape | None
    index: int
    count: int
    resolved: TensorRef | None = field(default=None, repr=False)


@dataclass(eq=False)
class Pending:
    """A part of a tensor (see :meth:`IRAssembler.part`), built from its resolved source by ``make`` when first
    read."""

    node: str
    source: "Symbol"
    shape: Shape
    make: Callable[[TensorRef], TensorRef] = field(repr=False)
    resolved: TensorRef | None = field(default=None, repr=False)


Symbol = TensorRef | Deferred | Pending
_SYMBOL_TYPES = (TensorRef, Deferred, Pending)


def is_symbol(value: object) -> bool:
    return isinstance(value, _SYMBOL_TYPES)


def iter_symbols(value: Any) -> Iterator[Symbol]:
    """Every symbol inside a nested structure of tuples, lists, dicts and slices."""
    if isinstance(value, _SYMBOL_TYPES):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from iter_symbols(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_symbols(item)
    elif isinstance(value, slice):
        for item in (value.start, value.stop, value.step):
            yield from iter_symbols(item)


def has_symbol(value: Any) -> bool:
    return next(iter_symbols(value), None) is not None


def view_kind(in_shape: Shape, out_shape: Shape) -> tuple[OpKind, int | None]:
    """Classify a shape change: ``FLATTEN`` (with its axis) when it merges the trailing dimensions from some axis
    ``k >= 1`` on, as ``NetworkBuilder.flatten`` does; ``RESHAPE`` otherwise. Every frontend classifies views of
    all kinds (flatten, view, reshape, squeeze, ONNX Flatten/Reshape) with this one rule, so the same shape change
    gets the same IR whatever operator spelled it."""
    k = len(out_shape) - 1
    merges_tail = k >= 1 and len(in_shape) > len(out_shape) and out_shape[k] == numel(in_shape[k:])
    if merges_tail and out_shape[:k] == in_shape[:k]:
        return OpKind.FLATTEN, k
    return OpKind.RESHAPE, None


def keeps_element_order(shape: Shape, perm: Sequence[int]) -> bool:
    """Whether permuting the dimensions of ``shape`` by ``perm`` (output dimension ``i`` is input dimension
    ``perm[i]``) moves only dimensions of size 1, so that the elements keep their order: a reshape, not a
    transpose. Every frontend classifies a transpose with this one rule."""
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


class IRAssembler:
    """Collects layers from a frontend, checks every inferred shape against the framework's, and applies the
    ``on_unsupported`` policy (see the module docstring)."""

    def __init__(self, name: str, on_unsupported: OnUnsupported, *, source: str) -> None:
        self.builder = NetworkBuilder(name)
        self.on_unsupported = check_on_unsupported(on_unsupported)
        self.source = source
        self._used: set[str] = set()
        self._unsupported: list[_UnsupportedNode] = []
        self._skipped: list[SkippedNode] = []
        self._pending: list[Pending] = []

    # ---- names ------------------------------------------------------------------------------------------
    def unique(self, name: str) -> str:
        """``name``, or ``name_1``, ``name_2``... if taken (a module called twice, a repeated ONNX node name)."""
        name = name or "node"
        candidate, i = name, 0
        while candidate in self._used:
            i += 1
            candidate = f"{name}_{i}"
        self._used.add(candidate)
        return candidate

    # ---- building ---------------------------------------------------------------------------------------
    def input(self, name: str, shape: Sequence[int]) -> TensorRef:
        unique = self.unique(name)
        self.builder.input(shape, name=unique)
        return TensorRef(unique, tuple(int(d) for d in shape))

    def layer(self, node: str, expected: Sequence[int] | None, build: Callable[[str], str]) -> TensorRef:
        """Add one layer: ``build(name)`` calls a :class:`NetworkBuilder` method with that name. The builder's
        inferred shape must equal the framework's (``expected``)."""
        name = build(self.unique(node))
        shape = self.builder.shape(name)
        if expected is not None and tuple(expected) != shape:
            raise InvalidInputError(
                f"{self.source}: node {node!r}: the IR infers output shape {shape}, the framework computed "
                f"{tuple(expected)}"
            )
        return TensorRef(name, shape)

    def view(self, node: str, src: Symbol, out_shape: Sequence[int]) -> TensorRef:
        """A flatten or reshape of ``src`` to ``out_shape`` (classified by :func:`view_kind`)."""
        ref = self.resolve(src)
        out = tuple(int(d) for d in out_shape)
        kind, axis = view_kind(ref.shape, out)
        if kind is OpKind.FLATTEN:
            assert axis is not None
            return self.layer(node, out, lambda n: self.builder.flatten(ref.name, axis=axis, name=n))
        return self.layer(node, out, lambda n: self.builder.reshape(ref.name, out, name=n))

    def permute(self, node: str, src: TensorRef, perm: Sequence[int], expected: Sequence[int] | None = None
                ) -> TensorRef:
        """``src`` with its dimensions reordered (output dimension ``i`` is input dimension ``perm[i]``; negative
        entries count from the end): ``src`` itself for the identity, a cost-free reshape when only dimensions of
        size 1 move (:func:`keeps_element_order`), else one ``TRANSPOSE``. Every frontend's transposes come here."""
        rank = len(src.shape)
        order = [int(p) % rank for p in perm] if rank else []
        if sorted(order) != list(range(rank)):
            raise Unsupported(f"{list(perm)} is not a permutation of the dimensions of {src.shape}")
        if order == list(range(rank)):
            return src
        if keeps_element_order(src.shape, order):
            return self.view(node, src, tuple(src.shape[p] for p in order))
        return self.layer(node, expected, lambda n: self.builder.transpose(src.name, order, name=n))

    def part(self, node: str, source: Symbol, sizes: Sequence[int], drop: Sequence[int] = ()) -> Symbol:
        """The part of ``source`` (whose shape must be known) that keeps ``sizes[d]`` consecutive elements of each
        dimension ``d``, without the dimensions ``drop`` (each of size 1 in ``sizes``): a narrow, a select, one
        output of a split, chunk or unbind, basic indexing. The source itself when that is all of it; else a
        :class:`Pending` that becomes, when first read, a cost-free reshape if nothing is cut away (only size-1
        dimensions dropped), one ``SLICE`` layer if at most one dimension is dropped, else a ``SLICE`` keeping the
        dropped dimensions as size 1 and a reshape (``{node}.squeeze``) without them."""
        if source.shape is None:
            raise Unsupported("the shape of its input is unknown")
        shape, sizes = tuple(source.shape), tuple(int(s) for s in sizes)
        dropped = sorted({int(d) % len(shape) for d in drop}) if shape else []
        if len(sizes) != len(shape) or not all(1 <= s <= d for s, d in zip(sizes, shape)) or any(
                sizes[d] != 1 for d in dropped):
            raise Unsupported(
                f"a part of sizes {sizes} (dropping dimensions {dropped}) is not a non-empty part of its input of "
                f"shape {shape}"
            )
        out = tuple(s for d, s in enumerate(sizes) if d not in dropped)
        if sizes == shape and not dropped:
            return source
        if sizes == shape:
            return self.pending(node, source, out, lambda src: self.view(node, src, out))

        def make(src: TensorRef) -> TensorRef:
            kept = sizes if len(dropped) > 1 else out
            sliced = self.layer(node, kept, lambda n: self._slice(n, src, kept))
            return self.view(f"{node}.squeeze", sliced, out) if kept != out else sliced

        return self.pending(node, source, out, make)

    def pending(
        self, node: str, source: Symbol, shape: Sequence[int], make: Callable[[TensorRef], TensorRef]
    ) -> Pending:
        """A tensor computed from ``source`` by ``make`` (which adds its layers) only when first read; one no layer
        or output reads is no layer (listed in the log at :meth:`finish`)."""
        pending = Pending(node, source, tuple(int(d) for d in shape), make)
        self._pending.append(pending)
        return pending

    def _slice(self, name: str, src: TensorRef, out: Shape) -> str:
        """One ``SLICE`` layer from ``src`` to ``out``: :meth:`NetworkBuilder.slice` for a narrow of one dimension,
        :meth:`NetworkBuilder.select` for a dropped dimension, else a stated layer (checked by ``check_slice``)."""
        shape = src.shape
        if len(out) == len(shape):
            narrowed = [d for d, (o, s) in enumerate(zip(out, shape)) if o != s]
            if len(narrowed) == 1:
                return self.builder.slice(src.name, narrowed[0], out[narrowed[0]], name=name)
        elif len(out) == len(shape) - 1:
            for axis in range(len(shape)):
                if shape[:axis] + shape[axis + 1:] == out:
                    return self.builder.select(src.name, axis, name=name)
        check_slice(shape, out, where=f"{self.source}: node {name!r}")
        layer = Layer(name=name, op=OpKind.SLICE, inputs=(src.name,), input_shapes=(shape,), output_shape=out)
        return self.builder.add_layer(layer)

    def resolve(self, value: Symbol) -> TensorRef:
        """The IR tensor behind a symbol; reading a :class:`Deferred` applies the ``on_unsupported`` policy."""
        if isinstance(value, TensorRef):
            return value
        if value.resolved is not None:
            return value.resolved
        if isinstance(value, Pending):
            value.resolved = value.make(self.resolve(value.source))
            return value.resolved
        origin = value.origin
        where = f"{self.source}: node {origin.node!r} ({origin.operator})"
        source = self.resolve(origin.source) if origin.source is not None else None
        if self.on_unsupported == "error":
            raise UnsupportedOperatorError(
                f"{where} cannot be represented in the IR: {origin.reason}; "
                "skip it explicitly with on_unsupported='skip' (CLI: --on-unsupported skip)",
                node=origin.node,
                operator=origin.operator,
            )
        if source is None or value.shape is None:
            missing = "it reads no tensor of the network" if source is None else "its output shape is unknown"
            raise UnsupportedOperatorError(
                f"{where} cannot be represented in the IR ({origin.reason}) and cannot be skipped: {missing}",
                node=origin.node,
                operator=origin.operator,
            )
        if value.shape == source.shape:
            value.resolved = source
            action = "readers take its input"
        else:
            node = origin.node if value.count == 1 else f"{origin.node}.{value.index}"
            layer = Layer(
                name=self.unique(node), op=OpKind.RESHAPE, inputs=(source.name,),
                input_shapes=(source.shape,), output_shape=value.shape,
            )
            value.resolved = TensorRef(self.builder.add_layer(layer), value.shape)
            action = f"kept as a cost-free reshape {source.shape} -> {value.shape}"
        if not origin.recorded:
            origin.recorded = True
            self._skipped.append(SkippedNode(origin.node, origin.operator, f"{origin.reason}; skipped, {action}"))
            logger.info("%s: skipped (%s), %s", where, origin.reason, action)
        return value.resolved

    def unsupported(
        self, node: str, operator: str, reason: str, source: Symbol | None, out_shapes: Sequence[Shape | None]
    ) -> list[Deferred]:
        """Defer a node the IR cannot represent; one :class:`Deferred` per output."""
        origin = _UnsupportedNode(node, operator, reason, source)
        self._unsupported.append(origin)
        logger.debug("%s: node %r (%s) deferred: %s", self.source, node, operator, reason)
        return [Deferred(origin, shape, i, len(out_shapes)) for i, shape in enumerate(out_shapes)]

    def finish(self, outputs: Sequence[Symbol]) -> Conversion:
        """Resolve the outputs and build the network; list every node that is not in it."""
        if not outputs:
            raise InvalidInputError(f"{self.source}: the network has no tensor output that depends on its input")
        names = [self.resolve(out).name for out in outputs]
        skipped_in_graph = len(self._skipped)
        for origin in self._unsupported:
            if not origin.recorded:
                origin.recorded = True
                self._skipped.append(SkippedNode(origin.node, origin.operator, UNUSED_REASON))
                logger.info("%s: node %r (%s) dropped: %s", self.source, origin.node, origin.operator, UNUSED_REASON)
        unread = [p.node for p in self._pending if p.resolved is None]
        if unread:
            logger.debug("%s: %d part(s) of tensors read by no layer or output, not built: %s", self.source,
                         len(unread), ", ".join(unread))
        network = self.builder.build(names)
        if skipped_in_graph:
            logger.warning(
                "%s: %d unsupported node(s) skipped, the IR approximates the network: %s", self.source,
                skipped_in_graph, ", ".join(f"{s.node} ({s.operator})" for s in self._skipped[:skipped_in_graph]),
            )
        return Conversion(network, tuple(self._skipped))


class Unsupported(Exception):
    """Raised by a frontend's operator handler: the IR cannot represent this node (the message says why)."""
