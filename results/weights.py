"""The weights a run's WEIGHTED aggregation uses: the tenant's (``tenants.weights``),
keyed by database id; invalid stored weights give equal weights and a warning, never a
failed run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from tenants.models import Node, Tenant
from tenants.weights import check_weights


@dataclass
class RunWeights:
    """What a run aggregates with: metric names, node ids and cluster ids to weights."""

    metric_weights: dict[str, float] = field(default_factory=dict)
    node_weights: dict[int, float] = field(default_factory=dict)
    cluster_weights: dict[int, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def by_level(self) -> dict[str, dict[Any, float]]:
        return {"metric_weights": self.metric_weights, "node_weights": self.node_weights,
                "cluster_weights": self.cluster_weights}


def run_weights(tenant_id: int) -> RunWeights:
    """The tenant's weights by database id, for a run; invalid ones give equal weights and a warning."""
    tenant = Tenant.objects.get(pk=tenant_id)
    weights = RunWeights()

    def valid(field_name: str, value: Any) -> dict[str, float]:
        try:
            return check_weights(field_name, value)
        except ValueError as exc:
            weights.warnings.append(f"{exc}; equal weights were used for that level (fix the tenant's weights)")
            return {}

    weights.metric_weights = valid("metric_weights", tenant.metric_weights or settings.FLEETWATCH_METRIC_WEIGHTS)
    by_node = valid("node_weights", tenant.node_weights)
    by_cluster = valid("cluster_weights", tenant.cluster_weights)
    if by_node or by_cluster:
        nodes = Node.objects.for_tenant(tenant_id).values_list("cluster_id", "cluster__name", "pk", "name")
        for cluster_id, cluster, node_id, node in nodes:
            if f"{cluster}/{node}" in by_node:
                weights.node_weights[node_id] = by_node[f"{cluster}/{node}"]
            if cluster in by_cluster:
                weights.cluster_weights[cluster_id] = by_cluster[cluster]
    return weights
