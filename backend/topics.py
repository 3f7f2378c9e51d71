"""Supervision topics (专项): the contract's four, plus the ones the plan adds."""

from typing import Literal, get_args

# Spelled out so type checkers see the values; TOPICS below must name the same ones, in the same order.
Topic = Literal["mining", "hazardous_chemicals", "construction", "fire_safety", "industry_trade", "road_transport"]

TOPICS: dict[str, str] = {
    "mining": "矿山",
    "hazardous_chemicals": "危险化学品",
    "construction": "建筑施工",
    "fire_safety": "消防",
    "industry_trade": "工贸",
    "road_transport": "道路运输",
}

if tuple(TOPICS) != get_args(Topic):
    raise RuntimeError("backend.topics: Topic and TOPICS name different topics")
