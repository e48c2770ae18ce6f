"""Ranking movers: which subjects entered, left or moved in a Top-N from one period to the
next (``rank_moves``); results/ranking.py reads the stored rankings and names the drivers."""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


class Move(enum.StrEnum):
    ENTERED = "entered"
    LEFT = "left"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class RankMove:
    subject: Hashable
    move: Move
    rank: int | None  # now, from 1 (None: it left)
    previous_rank: int | None  # before (None: it entered)

    @property
    def places(self) -> int:
        """Places climbed (negative: fallen); 0 for an entry or an exit."""
        if self.rank is None or self.previous_rank is None:
            return 0
        return self.previous_rank - self.rank


def rank_moves(previous: Sequence[Hashable], current: Sequence[Hashable]) -> list[RankMove]:
    """Two consecutive Top-N lists (subjects worst first) -> the moves: the subjects now in
    it by their rank (entries and climbs and falls; unchanged ones left out), then those
    that left by their former rank."""
    if len(set(previous)) != len(previous) or len(set(current)) != len(current):
        raise ValueError("rankings: a subject appears twice")
    before = {subject: i + 1 for i, subject in enumerate(previous)}
    now = {subject: i + 1 for i, subject in enumerate(current)}
    moves = []
    for subject, rank in now.items():
        was = before.get(subject)
        if was is None:
            moves.append(RankMove(subject, Move.ENTERED, rank, None))
        elif was != rank:
            moves.append(RankMove(subject, Move.UP if rank < was else Move.DOWN, rank, was))
    moves += [RankMove(subject, Move.LEFT, None, was) for subject, was in before.items() if subject not in now]
    return moves
