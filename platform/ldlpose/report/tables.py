"""Plain-text tables for the terminal."""

from __future__ import annotations

from ldlpose.metrics import METRIC_NAMES, metric_key

_HEADERS = {"mae_yaw": "yaw", "mae_pitch": "pitch", "mae_roll": "roll", "mae": "MAE", "maev": "MAEV",
            "geodesic": "geodesic"}


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def metrics_table(metrics: dict, sets: list[str]) -> str:
    """Per-set errors in degrees (rows: the validation split and each benchmark)."""
    rows = []
    for name in sets:
        values = [metrics.get(metric_key(name, m)) for m in METRIC_NAMES]
        rows.append([name, *("-" if v is None else f"{v:.2f}" for v in values)])
    return table(["set", *(_HEADERS[m] for m in METRIC_NAMES)], rows)


def measured_on(identities: dict[str, dict]) -> str:
    """What test scores were measured on: each benchmark's protocol and prepared data's content hash
    (``identities``: ``ldlpose.data.identity.RunData.benchmark_identities()``)."""
    return "\n".join(f"{name}: protocol {i['protocol']}, {i['rows']} rows, data {i['content_hash']}"
                     for name, i in identities.items())
