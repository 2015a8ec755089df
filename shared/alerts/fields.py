"""Metric fields a rule may reference, and their documented aliases.

| canonical | aliases |
| --- | --- |
| ``zscore`` | ``z``, ``zs`` |
| ``correlation`` | ``corr``, ``rho`` |
| ``adf_p`` | ``p``, ``pvalue``, ``adf_pvalue`` |
| ``adf_stat`` | ``adf``, ``adf_t`` |
| ``half_life`` | ``hl``, ``halflife`` |
| ``beta`` | ``b``, ``hedge_ratio`` |
| ``alpha`` | ``a``, ``intercept`` |
| ``r2`` | ``rsq``, ``r_squared`` |
| ``spread`` | ``s`` |
| ``y_price`` | ``y``, ``price_y`` |
| ``x_price`` | ``x``, ``price_x`` |
| ``window`` | (none) |

Names are case-insensitive. Fields that need a warm window are ``None`` until the metric is warm;
a comparison on a missing value is *unknown* (see ``evaluate``).
"""

from __future__ import annotations

from shared.messages import Metric

NUMERIC_FIELDS: tuple[str, ...] = (
    "zscore",
    "correlation",
    "adf_p",
    "adf_stat",
    "half_life",
    "beta",
    "alpha",
    "r2",
    "spread",
    "y_price",
    "x_price",
    "window",
)

ALIASES: dict[str, str] = {
    "z": "zscore",
    "zs": "zscore",
    "corr": "correlation",
    "rho": "correlation",
    "p": "adf_p",
    "pvalue": "adf_p",
    "adf_pvalue": "adf_p",
    "adf": "adf_stat",
    "adf_t": "adf_stat",
    "hl": "half_life",
    "halflife": "half_life",
    "b": "beta",
    "hedge_ratio": "beta",
    "a": "alpha",
    "intercept": "alpha",
    "rsq": "r2",
    "r_squared": "r2",
    "s": "spread",
    "y": "y_price",
    "price_y": "y_price",
    "x": "x_price",
    "price_x": "x_price",
}


def canonical_field(name: str) -> str | None:
    """The canonical field for a name or alias, or ``None`` when it is not a metric field."""
    key = name.strip().lower()
    if key in NUMERIC_FIELDS:
        return key
    return ALIASES.get(key)


def known_names() -> str:
    return ", ".join(NUMERIC_FIELDS)


def metric_values(metric: Metric) -> dict[str, float | None]:
    """Every rule-visible field of one metric (``None`` where the metric has no value yet)."""
    out: dict[str, float | None] = {}
    for name in NUMERIC_FIELDS:
        value = getattr(metric, name)
        # NaN compares false both ways; treat it as missing so it reads as "unknown", not "false".
        out[name] = None if value is None or value != value else float(value)
    return out
