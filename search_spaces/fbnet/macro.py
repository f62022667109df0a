"""The FBNet macro skeleton as used by HW-NAS-Bench and HELP, CIFAR-100 setting (shared by the IR and torch
builders): stem, 22 searchable layers in 7 stages, head.

Each searchable layer is a :class:`LayerSlot`: its input and output channels, its stride and the spatial size
of its input. Feature maps are 32×32 for stages 0..1, 16×16 for stage 2, 8×8 for stages 3..4 and 4×4 for
stages 5..6 and the head.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces.fbnet.codec import NUM_LAYERS, layer_label

INPUT_CHANNELS = 3
INPUT_SIZE = 32
DEFAULT_BATCH_SIZE = 1
INPUT_SHAPE: tuple[int, int, int, int] = (DEFAULT_BATCH_SIZE, INPUT_CHANNELS, INPUT_SIZE, INPUT_SIZE)
STEM_CHANNELS = 16
STAGE_LAYERS: tuple[int, ...] = (1, 4, 4, 4, 4, 4, 1)
STAGE_CHANNELS: tuple[int, ...] = (16, 24, 32, 64, 112, 184, 352)
STAGE_STRIDES: tuple[int, ...] = (1, 1, 2, 2, 1, 2, 1)  # stride of each stage's first layer (CIFAR)
HEAD_CHANNELS = 1504
NUM_CLASSES = 100


@dataclass(frozen=True, slots=True)
class LayerSlot:
    """One searchable layer of the skeleton."""

    index: int
    stage: int
    in_channels: int
    out_channels: int
    stride: int
    in_size: int  # height = width of the layer's input feature map

    @property
    def label(self) -> str:
        """``layer03``, as in the latency table columns and the encoding names."""
        return layer_label(self.index)

    @property
    def prefix(self) -> str:
        """``layers.3``: the module path of the layer in the torch network and the IR name prefix."""
        return f"layers.{self.index}"

    @property
    def out_size(self) -> int:
        return (self.in_size - 1) // self.stride + 1

    @property
    def has_residual(self) -> bool:
        """Whether an inverted-residual block here adds its input (and ``skip`` is an identity)."""
        return self.in_channels == self.out_channels and self.stride == 1


def layer_slots() -> tuple[LayerSlot, ...]:
    slots: list[LayerSlot] = []
    channels, size = STEM_CHANNELS, INPUT_SIZE
    for stage, (count, out_channels, first_stride) in enumerate(zip(STAGE_LAYERS, STAGE_CHANNELS, STAGE_STRIDES)):
        for i in range(count):
            stride = first_stride if i == 0 else 1
            slots.append(LayerSlot(len(slots), stage, channels, out_channels, stride, size))
            channels, size = out_channels, (size - 1) // stride + 1
    return tuple(slots)


SLOTS: tuple[LayerSlot, ...] = layer_slots()
assert len(SLOTS) == NUM_LAYERS
FINAL_CHANNELS = STAGE_CHANNELS[-1]
FINAL_SIZE = SLOTS[-1].out_size  # 4
