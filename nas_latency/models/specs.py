"""Model specs: a short text naming a cross-device model, e.g. ``blr`` or
``degenerate_aware(geo_ensemble(nnls_mix,blr))``. Used by ``models train --model``, ``evaluate --models`` and
the per-space defaults, so a model choice is one string in a report or a command line."""

from __future__ import annotations

import re

from nas_latency.errors import InvalidInputError, NotFoundError
from nas_latency.models.base import CrossDeviceModel

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|\(|\)|,)\s*")
#: wrappers take their arguments as models
_WRAPPERS = {"degenerate_aware": "base", "without_costs": "base", "clamp_speed": "base", "drop_outliers": "base",
             "geo_ensemble": "members", "loo_select": "members", "loo_average": "members"}


def _tokens(spec: str) -> list[str]:
    tokens, position = [], 0
    while position < len(spec):
        match = _TOKEN.match(spec, position)
        if match is None:
            raise InvalidInputError(f"model spec {spec!r}: unexpected text at position {position}: {spec[position:]!r}")
        tokens.append(match.group(1))
        position = match.end()
    if not tokens:
        raise InvalidInputError("model spec is empty")
    return tokens


def build_model(spec: str) -> CrossDeviceModel:
    """A fresh, unfitted cross-device model for ``spec``."""
    from nas_latency.models import model_class

    tokens = _tokens(spec)
    position = 0

    def parse() -> CrossDeviceModel:
        nonlocal position
        if position >= len(tokens):
            raise InvalidInputError(f"model spec {spec!r}: ends where a model name is expected")
        name = tokens[position]
        if name in "(),":
            raise InvalidInputError(f"model spec {spec!r}: expected a model name, got {name!r}")
        position += 1
        args: list[CrossDeviceModel] = []
        if position < len(tokens) and tokens[position] == "(":
            position += 1
            while True:
                args.append(parse())
                if position >= len(tokens):
                    raise InvalidInputError(f"model spec {spec!r}: missing ')'")
                if tokens[position] == ")":
                    position += 1
                    break
                if tokens[position] != ",":
                    raise InvalidInputError(f"model spec {spec!r}: expected ',' or ')', got {tokens[position]!r}")
                position += 1
        cls = model_class(name)
        if not issubclass(cls, CrossDeviceModel):
            raise NotFoundError(f"model spec {spec!r}: {name!r} is not a cross-device model")
        if name in _WRAPPERS:
            if not args:
                raise InvalidInputError(f"model spec {spec!r}: {name} needs models in parentheses, e.g. {name}(blr)")
            if _WRAPPERS[name] == "base":
                if len(args) != 1:
                    raise InvalidInputError(f"model spec {spec!r}: {name} wraps exactly one model")
                return cls(base=args[0])  # type: ignore[call-arg]
            return cls(members=args)  # type: ignore[call-arg]
        if args:
            raise InvalidInputError(f"model spec {spec!r}: {name} takes no arguments")
        return cls()  # type: ignore[return-value]

    model = parse()
    if position != len(tokens):
        raise InvalidInputError(f"model spec {spec!r}: unexpected {tokens[position]!r} after the model")
    return model
