"""Turn the layer rows of one Ganesan et al. network into IR, inferring the edges the table does not store.

The table is a flat sequence of layers (``conv``, ``dwconv``, ``add``, ``relu``, ``pool``) with shapes but no
edges. What was inferred from the data, and is checked on every row:

* Most layers read the tensor the previous row produced.
* ``add`` is the residual sum of an inverted-residual (MBConv) block: the previous rows are
  ``[conv 1×1 (expand) → relu] → dwconv → relu → conv 1×1 (project)``, and the add sums the projection with
  the block input, the tensor the expansion conv read (or the dwconv when the block has no expansion conv).
  When both readings are possible, the longer block (with the expansion conv) is taken: an expansion-1 block
  (FBNet-C's first block: conv 1×1 16→16) has intermediate tensors shaped exactly like its input, so the
  shape alone cannot tell. Every add of the 100 MobileGen networks is checked against their ``n_skips``.
* SqueezeNet fire modules (networks ``squeezenet1_0``/``1_1``) branch and concatenate, and the table has no
  concat: a conv whose ``in_channels`` differ from the previous tensor reads either the concatenation of the
  open branches (tensors nobody has read yet) at that resolution, in production order, or, failing that, the
  most recent earlier tensor with its input shape (the squeeze output the 3×3 expand conv reads). A ``pool``
  with several open branches pools their concatenation; its table row then records only the last branch's
  channels (and ``macs`` counts only those elements), which is accepted as an encoding quirk.
* ``pool`` with ``out_hw == 1`` and a window covering the whole input is the global average pool before
  the classifier; any other pool is a max pool (only SqueezeNet has them: 3×3, stride 2) with
  ``ceil_mode=True`` as torchvision defines them (SqueezeNet 1.0's 54→27 pool needs it), or floor mode if
  only that reproduces ``out_hw``.
* ``padding`` is symmetric, ``(in + 2·padding − kernel) // stride + 1`` must equal ``out_hw``.
* Convolutions carry a bias (the networks ran under TFLite, where batch norm is folded into the conv),
  and there are no batch-norm layers. The final fully-connected layer stays the 1×1 conv the table encodes,
  so the network output is ``(1, 1000, 1, 1)``. With these choices both SqueezeNets have exactly
  torchvision's parameter counts, which confirms the inferred concatenations.

Every built layer is checked against its row: output channels and size, conv/dwconv ``macs`` equal to the
IR's MACs, relu/add/pool ``macs`` equal to the number of output elements.

Any row that fits none of this raises :class:`~nas_latency.errors.InvalidInputError` naming the network and
``layer_index``; nothing is dropped.
"""

from __future__ import annotations

from typing import Sequence

from nas_latency.errors import InvalidInputError
from nas_latency.ir import Layer, Network, NetworkBuilder
from nas_latency.ir.builder import window_output_size
from search_spaces.ganesan_mobile.table import OP_TYPES, LayerRow

INPUT_SHAPE: tuple[int, int, int, int] = (1, 3, 224, 224)


def layer_name(row: LayerRow) -> str:
    """IR name of the layer of a table row: ``layer012_dwconv``."""
    return f"layer{row.layer_index:03d}_{row.op_type}"


class _Reader:
    """State while reading one network's rows in order."""

    def __init__(self, name: str, rows: Sequence[LayerRow]) -> None:
        self.name = name
        self.rows = rows
        self.b = NetworkBuilder(name)
        self.current = self.b.input(INPUT_SHAPE, name="input")
        self.history: list[str] = [self.current]  # every tensor, in production order
        self.open: dict[str, None] = {}  # tensors produced but not read yet (insertion order = production order)
        self.read: list[str] = []  # per row: the (first) tensor it read
        self.pooled_branches: dict[int, int] = {}  # layer_index of a pool of a concat -> last branch's channels

    # ---- helpers -----------------------------------------------------------------------------------------
    def fail(self, row: LayerRow, message: str) -> InvalidInputError:
        return InvalidInputError(f"ganesan network {self.name!r} (id {row.network_id}), {row.where}: {message}")

    def chw(self, tensor: str) -> tuple[int, int, int]:
        _, c, h, w = self.b.shape(tensor)
        return c, h, w

    def consume(self, *tensors: str) -> None:
        for tensor in tensors:
            self.open.pop(tensor, None)

    def produce(self, tensor: str) -> str:
        self.open[tensor] = None
        self.history.append(tensor)
        self.current = tensor
        return tensor

    def open_branches(self) -> list[str]:
        """Open tensors at the current tensor's resolution, in production order."""
        _, h, w = self.chw(self.current)
        return [t for t in self.open if self.chw(t)[1:] == (h, w)]

    def concat(self, row: LayerRow, branches: list[str]) -> str:
        tensor = self.b.concat(branches, axis=1, name=f"layer{row.layer_index:03d}_input_concat")
        self.consume(*branches)
        return self.produce(tensor)

    # ---- input resolution ----------------------------------------------------------------------------------
    def conv_input(self, row: LayerRow) -> str:
        want = (row.in_channels, row.in_hw, row.in_hw)
        if self.chw(self.current) == want:
            return self.current
        branches = self.open_branches()
        if (
            len(branches) > 1
            and self.chw(self.current)[1:] == want[1:]
            and sum(self.chw(t)[0] for t in branches) == row.in_channels
        ):
            return self.concat(row, branches)
        for tensor in reversed(self.history):
            if self.chw(tensor) == want:
                return tensor
        raise self.fail(
            row,
            f"reads {row.in_channels}x{row.in_hw}x{row.in_hw}, but the previous tensor is "
            f"{'x'.join(map(str, self.chw(self.current)))} and no open branches or earlier tensor match",
        )

    def block_input(self, i: int, row: LayerRow) -> str:
        """The tensor a residual add at row ``i`` adds to the projection (see the module docstring)."""
        ops = [r.op_type for r in self.rows[max(0, i - 5) : i]]
        pattern_ok = (
            i >= 3
            and self.rows[i - 1].op_type == "conv"
            and self.rows[i - 1].kernel == 1
            and self.rows[i - 2].op_type == "relu"
            and self.rows[i - 3].op_type == "dwconv"
        )
        if not pattern_ok:
            raise self.fail(
                row,
                f"an add must follow dwconv, relu, conv 1x1 (an inverted-residual block) so that its second "
                f"input is known; the rows before it are {ops}",
            )
        candidates: list[str] = []
        expand = self.rows[i - 5] if i >= 5 else None
        has_expansion = expand is not None and expand.op_type == "conv" and expand.kernel == 1
        if has_expansion and self.rows[i - 4].op_type == "relu":
            candidates.append(self.read[i - 5])
        candidates.append(self.read[i - 3])
        want = self.chw(self.current)
        for tensor in candidates:
            if self.chw(tensor) == want:
                return tensor
        raise self.fail(
            row,
            f"the block input ({', '.join(candidates)}) is not shaped like the projection "
            f"{'x'.join(map(str, want))}, so the residual add cannot be formed",
        )

    # ---- rows --------------------------------------------------------------------------------------------
    def check_input_shape(self, row: LayerRow, tensor: str) -> None:
        c, h, w = self.chw(tensor)
        if (c, h, w) != (row.in_channels, row.in_hw, row.in_hw):
            raise self.fail(
                row, f"table input {row.in_channels}x{row.in_hw}x{row.in_hw} but it reads {tensor!r} of {c}x{h}x{w}"
            )

    def no_window(self, row: LayerRow) -> None:
        if (row.kernel, row.stride, row.padding) != (0, 0, 0):
            raise self.fail(
                row, f"kernel/stride/padding must be 0 for {row.op_type}, got {row.kernel}/{row.stride}/{row.padding}"
            )
        if (row.in_hw, row.in_channels) != (row.out_hw, row.out_channels):
            raise self.fail(
                row,
                f"{row.op_type} must keep its shape, table says {row.in_channels}x{row.in_hw} -> "
                f"{row.out_channels}x{row.out_hw}",
            )

    def conv_row(self, row: LayerRow) -> str:
        if row.kernel < 1 or row.stride < 1 or row.padding < 0:
            raise self.fail(row, f"bad kernel/stride/padding {row.kernel}/{row.stride}/{row.padding}")
        src = self.conv_input(row)
        if row.op_type == "dwconv":
            if row.out_channels % row.in_channels:
                raise self.fail(row, f"depthwise conv from {row.in_channels} to {row.out_channels} channels")
            groups = row.in_channels
        else:
            groups = 1
        self.read.append(src)
        self.consume(src)
        tensor = self.b.conv(
            src, row.out_channels, row.kernel, stride=row.stride, padding=row.padding, groups=groups, bias=True,
            name=layer_name(row),
        )
        return self.produce(tensor)

    def relu_row(self, row: LayerRow) -> str:
        self.no_window(row)
        self.check_input_shape(row, self.current)
        self.read.append(self.current)
        self.consume(self.current)
        return self.produce(self.b.relu(self.current, name=layer_name(row)))

    def add_row(self, i: int, row: LayerRow) -> str:
        self.no_window(row)
        self.check_input_shape(row, self.current)
        other = self.block_input(i, row)
        self.read.append(self.current)
        self.consume(self.current, other)
        return self.produce(self.b.add(self.current, other, name=layer_name(row)))

    def pool_row(self, row: LayerRow) -> str:
        if row.kernel < 1 or row.stride < 1 or row.padding < 0:
            raise self.fail(row, f"bad kernel/stride/padding {row.kernel}/{row.stride}/{row.padding}")
        if row.in_channels != row.out_channels:
            raise self.fail(row, f"a pool keeps channels, table says {row.in_channels} -> {row.out_channels}")
        last = self.current
        self.check_input_shape(row, last)
        branches = self.open_branches()
        src = last
        if len(branches) > 1:
            src = self.concat(row, branches)
            self.pooled_branches[row.layer_index] = self.chw(last)[0]
        self.read.append(src)
        self.consume(src)
        name = layer_name(row)
        if row.out_hw == 1 and row.kernel == row.in_hw and row.padding == 0:
            return self.produce(self.b.global_avg_pool(src, name=name))
        for ceil_mode in (True, False):
            size = window_output_size(row.in_hw, row.kernel, row.stride, row.padding, row.padding, 1, ceil_mode)
            if size == row.out_hw:
                tensor = self.b.max_pool(
                    src, row.kernel, stride=row.stride, padding=row.padding, ceil_mode=ceil_mode, name=name
                )
                return self.produce(tensor)
        raise self.fail(
            row, f"no pooling of {row.in_hw} with kernel {row.kernel}, stride {row.stride}, padding {row.padding} "
            f"gives {row.out_hw}"
        )

    def run(self) -> Network:
        if not self.rows:
            raise InvalidInputError(f"ganesan network {self.name!r}: has no layer rows")
        for i, row in enumerate(self.rows):
            if row.op_type in ("conv", "dwconv"):
                self.conv_row(row)
            elif row.op_type == "relu":
                self.relu_row(row)
            elif row.op_type == "add":
                self.add_row(i, row)
            elif row.op_type == "pool":
                self.pool_row(row)
            else:
                raise self.fail(row, f"unknown op_type {row.op_type!r}; known: {', '.join(OP_TYPES)}")
        dangling = [t for t in self.open if t != self.current]
        if dangling:
            raise InvalidInputError(
                f"ganesan network {self.name!r}: tensors {dangling} are never read; the layer sequence could not "
                "be turned into a single-output network"
            )
        network = self.b.build([self.current])
        for row in self.rows:
            self.validate(row, network.layer(layer_name(row)))
        return network

    def validate(self, row: LayerRow, layer: Layer) -> None:
        """The built layer must reproduce the row's shapes and ``macs`` (see the pool quirk above)."""
        n, c, h, w = layer.output_shape
        # a pool of concatenated branches: the row describes only the last branch
        table_c = self.pooled_branches.get(row.layer_index, c)
        if (table_c, h, w) != (row.out_channels, row.out_hw, row.out_hw):
            raise self.fail(
                row, f"table output {row.out_channels}x{row.out_hw}x{row.out_hw}, the layer gives {c}x{h}x{w}"
            )
        if row.op_type in ("conv", "dwconv"):
            if layer.macs != row.macs:
                raise self.fail(row, f"table macs {row.macs}, the IR layer has {layer.macs}")
        elif row.macs != n * table_c * h * w:
            raise self.fail(row, f"table macs {row.macs} is not the number of output elements {n * table_c * h * w}")


def build_network(name: str, rows: Sequence[LayerRow]) -> Network:
    """The IR of a Ganesan network from its layer rows (input ``(1, 3, 224, 224)``), named ``name``."""
    return _Reader(name, rows).run()
