"""NAS-Bench-201 (Dong & Yang, ICLR 2020), CIFAR setting: strings ⇄ official index ⇄ IR ⇄ torch ⇄ NNI samples.

torch is imported only by :mod:`search_spaces.nasbench201.torch_builder` (and ``NasBench201Space.to_torch``).
"""

from search_spaces.nasbench201.canonical import (
    branch_swap_twin,
    canonical_cell,
    cell_key,
    computation_key,
    dead_edges,
    is_dead_cell,
    isomorphism_classes,
    live_edges,
    prune_dead,
)
from search_spaces.nasbench201.codec import (
    EDGES,
    NUM_ARCHS,
    OPS,
    all_archs,
    all_archs_array,
    arch_to_index,
    archs_from_ops_array,
    archs_to_indices,
    format_arch,
    index_to_arch,
    indices_to_archs,
    is_valid_arch,
    op_indices,
    ops_array,
    parse_arch,
)
from search_spaces.nasbench201.ir_builder import build_ir
from search_spaces.nasbench201.nni_adapter import NNI_LABELS, from_nni_sample, to_nni_sample
from search_spaces.nasbench201.space import ENCODING_NAMES, NasBench201Space

__all__ = [
    "EDGES",
    "ENCODING_NAMES",
    "NNI_LABELS",
    "NUM_ARCHS",
    "OPS",
    "NasBench201Space",
    "all_archs",
    "all_archs_array",
    "arch_to_index",
    "archs_from_ops_array",
    "archs_to_indices",
    "branch_swap_twin",
    "build_ir",
    "canonical_cell",
    "cell_key",
    "computation_key",
    "dead_edges",
    "format_arch",
    "from_nni_sample",
    "index_to_arch",
    "indices_to_archs",
    "is_dead_cell",
    "is_valid_arch",
    "isomorphism_classes",
    "live_edges",
    "op_indices",
    "ops_array",
    "parse_arch",
    "prune_dead",
    "to_nni_sample",
]
