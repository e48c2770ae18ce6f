"""The sentences of root-cause hints and ranking moves, and the lists of node names they
need. All wording lives here; numbers, sigmas, durations and moments read as in every
other sentence (``analytics.core.formatting``)."""

from __future__ import annotations

from collections.abc import Sequence

from analytics.core.contracts import Direction
from analytics.core.formatting import format_lag, format_sigma, format_time
from analytics.core.rca.hint import CoMovementGroup, Moved, OriginCandidate
from analytics.core.rca.movers import Move, RankMove

MAX_LISTED = 4  # metrics named in a follower list before "and N more series"
MAX_NODES = 4  # nodes named per metric before "(+N)"


def node_list(names: Sequence[str], limit: int = MAX_NODES) -> str:
    """node-01, -02, -07 (+2): names after the first drop the prefix (up to its last '-')
    they share; past ``limit`` names, how many more."""
    if not names:
        return ""
    first = names[0]
    prefix = first[: first.rfind("-") + 1] if "-" in first else ""
    rest = [("-" + n[len(prefix):]) if prefix and n.startswith(prefix) else n for n in names[1:limit]]
    more = f" (+{len(names) - limit})" if len(names) > limit else ""
    return ", ".join([first, *rest]) + more


def series_name(moved: Moved) -> str:
    return f"{moved.node} {moved.metric}"


def _verb(direction: Direction) -> str:
    return "rose" if direction is Direction.UP else "fell"


def followers_phrase(followers: Sequence[Moved]) -> str:
    """latency_ms on node-03 and network_out on node-01, -02 (metrics in order of first onset)."""
    by_metric: dict[str, list[str]] = {}
    for moved in followers:
        nodes = by_metric.setdefault(moved.metric, [])
        if moved.node not in nodes:
            nodes.append(moved.node)
    parts = [f"{metric} on {node_list(nodes)}" for metric, nodes in by_metric.items()]
    if len(parts) > MAX_LISTED:
        shown = parts[: MAX_LISTED - 1]
        hidden = sum(len(by_metric[m]) for m in list(by_metric)[MAX_LISTED - 1:])
        return ", ".join(shown) + f" and {hidden} more series"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def hint_sentence(groups: Sequence[CoMovementGroup], origin: OriginCandidate | None) -> str:
    """One sentence: the origin and who followed, or why there is no clear origin."""
    if not groups:
        return "No series moved clearly in this window; no origin to name."
    main = groups[0]
    first = main.first
    if len(main.members) == 1:
        return (f"{series_name(first)} {_verb(first.direction)} at {format_time(first.onset)} and nothing moved with it; "
                "no clear origin.")
    followers = [m.moved for m in main.members[1:]]
    if origin is None:
        second = main.members[1]
        more = len(main.members) - 2
        after = f", {more} more series after them" if more else ""
        return (f"{series_name(first)} and {series_name(second.moved)} moved within {format_lag(second.lag_seconds)} "
                f"of each other{after}; no clear origin.")
    return (f"{series_name(first)} {_verb(first.direction)} {format_lag(origin.lead_seconds or 0)} before "
            f"{followers_phrase(followers)}; likely origin: {series_name(first)}.")


def driver_phrase(metric: str, sigma: float | None, score: float | None) -> str:
    """network_in +30σ (the driving anomaly's deviation), or its score without one."""
    if not metric:
        return ""
    if sigma is not None:
        return f"{metric} {format_sigma(sigma)}"
    return f"{metric} score {score:.2f}" if score is not None else metric


def move_sentence(name: str, move: RankMove, top: int, driver: str) -> str:
    """node-04 up 6 places: network_in +30σ."""
    places = abs(move.places)
    what = {
        Move.ENTERED: f"entered the top {top} at {move.rank}",
        Move.LEFT: f"left the top {top} (was {move.previous_rank})",
        Move.UP: f"up {places} place{'s' if places != 1 else ''}",
        Move.DOWN: f"down {places} place{'s' if places != 1 else ''}",
    }[move.move]
    return f"{name} {what}: {driver}" if driver else f"{name} {what}"
