"""Hyperparameter ranges, with the SageMaker SDK's names and scaling types.

    ContinuousParameter(1e-4, 1e-1, scaling_type="Logarithmic")
    IntegerParameter(2, 10)
    CategoricalParameter([16, 32, 64])

Scaling types: ``Auto`` (logarithmic when the range is positive and spans two orders of
magnitude or more, else linear; what was chosen is recorded), ``Linear``, ``Logarithmic``,
``ReverseLogarithmic`` (for values close to 1, e.g. momentum: sampled as ``1 - x`` on a log scale).
Each range becomes an Optuna distribution; bad ranges fail with the name and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from visiontune.errors import ConfigError

SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")


class Parameter:
    """A range of one hyperparameter."""

    kind = ""

    def check(self, name: str) -> None:
        raise NotImplementedError

    def distribution(self, name: str):
        """The Optuna distribution the search samples from (for ReverseLogarithmic, of ``1 - value``)."""
        raise NotImplementedError

    def value(self, sampled: Any) -> Any:
        """The hyperparameter value for a sampled point."""
        return sampled

    def to_dict(self) -> dict:
        raise NotImplementedError


def _scaling(name: str, scaling: str, lo: float, hi: float, integer: bool) -> str:
    if scaling not in SCALING_TYPES:
        raise ConfigError(f"{name}: scaling_type {scaling!r}: choose one of {', '.join(SCALING_TYPES)}")
    if scaling == "Auto":
        return "Logarithmic" if lo > 0 and hi / lo >= 100 else "Linear"
    if scaling == "Logarithmic" and lo <= 0:
        raise ConfigError(
            f"{name}: Logarithmic scaling needs a range above 0 (min_value is {lo:g}); raise "
            "min_value or use Linear scaling"
        )
    if scaling == "ReverseLogarithmic":
        if integer:
            raise ConfigError(f"{name}: ReverseLogarithmic scaling is for continuous ranges only")
        if not 0 <= lo < hi < 1:
            raise ConfigError(
                f"{name}: ReverseLogarithmic scaling needs 0 <= min_value < max_value < 1 (got {lo:g}..{hi:g})"
            )
    return scaling


def _bounds(name: str, lo, hi, scaling: str, integer: bool) -> str:
    """Both bounds numbers (whole ones for integers), in order, and a scaling that fits them."""
    for v in (lo, hi):
        ok = isinstance(v, int) if integer else isinstance(v, (int, float)) and math.isfinite(v)
        if not ok or isinstance(v, bool):
            what = "an IntegerParameter takes whole numbers" if integer else "min_value and max_value must be numbers"
            raise ConfigError(f"{name}: {what} (got {v!r})")
    if lo > hi:
        raise ConfigError(f"{name}: min_value {lo:g} > max_value {hi:g}; swap them")
    return _scaling(name, scaling, lo, hi, integer=integer)


@dataclass
class ContinuousParameter(Parameter):
    min_value: float
    max_value: float
    scaling_type: str = "Auto"
    kind = "continuous"

    def check(self, name: str) -> None:
        _bounds(name, self.min_value, self.max_value, self.scaling_type, integer=False)

    def resolved_scaling(self, name: str = "range") -> str:
        return _scaling(name, self.scaling_type, float(self.min_value), float(self.max_value), integer=False)

    def distribution(self, name: str):
        from optuna.distributions import FloatDistribution

        self.check(name)
        lo, hi, scaling = float(self.min_value), float(self.max_value), self.resolved_scaling(name)
        if scaling == "ReverseLogarithmic":
            return FloatDistribution(1.0 - hi, 1.0 - lo, log=True)
        return FloatDistribution(lo, hi, log=scaling == "Logarithmic")

    def value(self, sampled):
        return 1.0 - sampled if self.resolved_scaling() == "ReverseLogarithmic" else float(sampled)

    def to_dict(self) -> dict:
        return {"type": "continuous", "min": self.min_value, "max": self.max_value, "scaling": self.scaling_type}


@dataclass
class IntegerParameter(Parameter):
    min_value: int
    max_value: int
    scaling_type: str = "Auto"
    kind = "integer"

    def check(self, name: str) -> None:
        _bounds(name, self.min_value, self.max_value, self.scaling_type, integer=True)

    def distribution(self, name: str):
        from optuna.distributions import IntDistribution

        self.check(name)
        scaling = _scaling(name, self.scaling_type, self.min_value, self.max_value, integer=True)
        return IntDistribution(self.min_value, self.max_value, log=scaling == "Logarithmic")

    def value(self, sampled):
        return int(sampled)

    def grid(self) -> list[int]:
        return list(range(self.min_value, self.max_value + 1))

    def to_dict(self) -> dict:
        return {"type": "integer", "min": self.min_value, "max": self.max_value, "scaling": self.scaling_type}


@dataclass
class CategoricalParameter(Parameter):
    values: list
    kind = "categorical"

    def __post_init__(self):
        if not isinstance(self.values, (list, tuple)):
            self.values = [self.values]
        self.values = list(self.values)

    def check(self, name: str) -> None:
        if not self.values:
            raise ConfigError(f"{name}: a CategoricalParameter needs at least one value")
        bad = [v for v in self.values if not isinstance(v, (str, int, float, bool)) and v is not None]
        if bad:
            raise ConfigError(f"{name}: categorical values must be strings, numbers or booleans (got {bad[0]!r})")
        if len(set(map(repr, self.values))) != len(self.values):
            raise ConfigError(f"{name}: the values {self.values} repeat one")

    def distribution(self, name: str):
        from optuna.distributions import CategoricalDistribution

        self.check(name)
        return CategoricalDistribution(self.values)

    def grid(self) -> list:
        return list(self.values)

    def to_dict(self) -> dict:
        return {"type": "categorical", "values": self.values}


def parse_range(name: str, spec: Any) -> Parameter:
    """A range from a config file: ``{type: continuous, min, max, scaling}``, ``{type: integer, ...}``,
    ``{type: categorical, values: [...]}``, or a plain list (categorical)."""
    if isinstance(spec, Parameter):
        spec.check(name)
        return spec
    if isinstance(spec, list):
        spec = {"type": "categorical", "values": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(f"ranges.{name}: give {{type: continuous|integer|categorical, ...}} or a list of values")
    kind = str(spec["type"]).lower()
    unknown = set(spec) - {"type", "min", "max", "scaling", "scaling_type", "values", "min_value", "max_value"}
    if unknown:
        raise ConfigError(f"ranges.{name}: unknown key(s) {', '.join(sorted(unknown))}")
    lo, hi = spec.get("min", spec.get("min_value")), spec.get("max", spec.get("max_value"))
    scaling = spec.get("scaling", spec.get("scaling_type", "Auto"))
    if kind == "continuous":
        p: Parameter = ContinuousParameter(_number(name, lo, "min"), _number(name, hi, "max"), scaling)
    elif kind == "integer":
        p = IntegerParameter(_whole(name, lo, "min"), _whole(name, hi, "max"), scaling)
    elif kind == "categorical":
        p = CategoricalParameter(spec.get("values"))
    else:
        raise ConfigError(f"ranges.{name}: type {spec['type']!r}: choose continuous, integer or categorical")
    p.check(name)
    return p


def _whole(name: str, v: Any, which: str) -> int:
    """An integer range's end, also from a form's text ("4", "4.0"); refused when it is not whole."""
    number = _number(name, v, which)
    if not number.is_integer():
        raise ConfigError(f"ranges.{name}: {which} must be a whole number (got {v!r})")
    return int(number)


def _number(name: str, v: Any, which: str) -> float:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise ConfigError(f"ranges.{name}: {which} must be a number (got {v!r})")
    return float(v)
