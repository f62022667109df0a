"""Model specs: a short text naming a cross-device model, e.g. ``blr`` or
``degenerate_aware(geo_ensemble(nnls_mix,blr))``. Used by ``models train --model``, ``evaluate --models`` and
the per-space defaults, so a model choice is one string in a report or a command line.

A model's settings follow its models in the parentheses as ``name=value``, e.g.
``loo_select(without_costs(blr),cost_nnls,significance=0.01)`` or ``gp_mix(standardize=false)``: the name is a
parameter of the model's constructor (not the models it wraps), the value a number, ``true``/``false`` or a bare
word (a string). The model checks the values when it is fitted.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from nas_latency.errors import InvalidInputError, NotFoundError
from nas_latency.models.base import CrossDeviceModel

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(rf"\s*({_NAME}|{_NUMBER}|\(|\)|,|=)\s*")
_IDENTIFIER = re.compile(_NAME)
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
        if not _IDENTIFIER.fullmatch(name):
            raise InvalidInputError(f"model spec {spec!r}: expected a model name, got {name!r}")
        position += 1
        args: list[CrossDeviceModel] = []
        settings: dict[str, Any] = {}
        if position < len(tokens) and tokens[position] == "(":
            position += 1
            while True:
                if position + 1 < len(tokens) and tokens[position + 1] == "=":
                    key, value = parse_setting(name)
                    if key in settings:
                        raise InvalidInputError(f"model spec {spec!r}: {name} setting {key!r} is given twice")
                    settings[key] = value
                elif settings:
                    raise InvalidInputError(f"model spec {spec!r}: {name}'s models must come before its settings")
                else:
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
        check_settings(cls, name, settings)
        if name in _WRAPPERS:
            if not args:
                raise InvalidInputError(f"model spec {spec!r}: {name} needs models in parentheses, e.g. {name}(blr)")
            if _WRAPPERS[name] == "base":
                if len(args) != 1:
                    raise InvalidInputError(f"model spec {spec!r}: {name} wraps exactly one model")
                return cls(base=args[0], **settings)  # type: ignore[call-arg]
            return cls(members=args, **settings)  # type: ignore[call-arg]
        if args:
            raise InvalidInputError(f"model spec {spec!r}: {name} takes no models, only settings (name=value)")
        return cls(**settings)  # type: ignore[return-value]

    def parse_setting(owner: str) -> tuple[str, Any]:
        nonlocal position
        key = tokens[position]
        if not _IDENTIFIER.fullmatch(key):
            raise InvalidInputError(f"model spec {spec!r}: {owner} setting name must be a word, got {key!r}")
        position += 2  # the name and '='
        if position >= len(tokens) or tokens[position] in ("(", ")", ",", "="):
            raise InvalidInputError(f"model spec {spec!r}: {owner} setting {key!r} has no value after '='")
        text = tokens[position]
        position += 1
        return key, setting_value(text)

    def check_settings(cls: type, name: str, settings: dict[str, Any]) -> None:
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", _WRAPPERS.get(name))]
        unknown = sorted(set(settings) - set(accepted))
        if unknown:
            known = ", ".join(accepted) if accepted else "none"
            raise InvalidInputError(f"model spec {spec!r}: {name} has no setting {', '.join(map(repr, unknown))} "
                                    f"(its settings: {known})")

    model = parse()
    if position != len(tokens):
        raise InvalidInputError(f"model spec {spec!r}: unexpected {tokens[position]!r} after the model")
    return model


def setting_value(text: str) -> Any:
    """A setting's value from its spec text: an int, a float, ``true``/``false`` as booleans, else the word."""
    if text in ("true", "false"):
        return text == "true"
    if _IDENTIFIER.fullmatch(text):
        return text
    try:
        return int(text)
    except ValueError:
        return float(text)
