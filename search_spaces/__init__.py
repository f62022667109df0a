"""Search spaces behind one registry: ``get_space("nasbench201")``."""

from __future__ import annotations

import importlib
from functools import lru_cache

from nas_latency.errors import NotFoundError
from search_spaces.base import SearchSpace

# name -> "module:attribute" of a SearchSpace subclass; imported only when asked for.
_REGISTRY: dict[str, str] = {
    "nasbench201": "search_spaces.nasbench201.space:NasBench201Space",
    "fbnet": "search_spaces.fbnet.space:FBNetSpace",
    "ganesan_mobile": "search_spaces.ganesan_mobile.space:GanesanMobileSpace",
}


def space_names() -> list[str]:
    return sorted(_REGISTRY)


@lru_cache(maxsize=None)
def get_space(name: str) -> SearchSpace:
    """The registered space called ``name``; ``NotFoundError`` listing the known names otherwise."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise NotFoundError(f"unknown search space {name!r}; known spaces: {', '.join(space_names())}") from None
    module_name, attribute = target.split(":")
    cls = getattr(importlib.import_module(module_name), attribute)
    return cls()


__all__ = ["SearchSpace", "get_space", "space_names"]
