"""The one-line summary of an incident: "cluster-2: 3 nodes, network_in/out and latency
up since 08:35 UTC". Wording reuses the detection core's formatting (times, node lists)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from analytics.core.explain import format_time
from analytics.core.rca.text import node_list

MAX_METRICS = 4  # metric families named before "and N more"


def metric_families(metrics: Sequence[str]) -> list[str]:
    """network_in, network_out, latency -> network_in/out, latency: metrics sharing the
    part before their last '_' are written once (first-seen order)."""
    families: dict[str, list[str]] = {}
    for metric in metrics:
        stem, sep, tail = metric.rpartition("_")
        key = stem if sep else metric
        families.setdefault(key, []).append(tail if sep else "")
    out = []
    for stem, tails in families.items():
        out.append(f"{stem}_{'/'.join(tails)}" if len(tails) > 1 else (f"{stem}_{tails[0]}" if tails[0] else stem))
    return out


def _joined(parts: list[str]) -> str:
    if len(parts) > MAX_METRICS:
        return ", ".join(parts[: MAX_METRICS - 1]) + f" and {len(parts) - MAX_METRICS + 1} more"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def anomaly_summary(cluster: str, nodes: Sequence[str], metrics: Sequence[str], directions: set[str],
                    since: datetime) -> str:
    where = f"{cluster}/{nodes[0]}" if len(nodes) == 1 else f"{cluster}: {len(nodes)} nodes ({node_list(sorted(nodes))})"
    how = "up" if directions == {"up"} else "down" if directions == {"down"} else "anomalous"
    return f"{where}, {_joined(metric_families(metrics))} {how} since {format_time(since)}"


def no_data_summary(cluster: str, node: str, since: datetime) -> str:
    return f"{cluster}/{node}: no data since {format_time(since)}"
