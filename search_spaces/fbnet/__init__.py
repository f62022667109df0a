"""The FBNet search space (HW-NAS-Bench / HELP, CIFAR-100 setting): codec, IR and torch builders, space."""

from search_spaces.fbnet.codec import BLOCKS, NUM_LAYERS, block_codes, format_arch, parse_arch
from search_spaces.fbnet.ir_builder import build_ir
from search_spaces.fbnet.space import FBNetSpace

__all__ = ["BLOCKS", "NUM_LAYERS", "FBNetSpace", "block_codes", "build_ir", "format_arch", "parse_arch"]
