"""The mobile networks of Ganesan et al. (IISWC 2020): layer tables read as IR, behind ``ganesan_mobile``."""

from search_spaces.ganesan_mobile.ir_builder import build_network
from search_spaces.ganesan_mobile.space import GanesanMobileSpace, lookup

__all__ = ["GanesanMobileSpace", "build_network", "lookup"]
