"""Supervision topics (专项): the contract's four, plus the ones the plan adds."""

TOPICS: dict[str, str] = {
    "mining": "矿山",
    "hazardous_chemicals": "危险化学品",
    "construction": "建筑施工",
    "fire_safety": "消防",
    "industry_trade": "工贸",
    "road_transport": "道路运输",
}
