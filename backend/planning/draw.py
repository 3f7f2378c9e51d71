"""双随机 (随机抽取检查对象、随机选派执法检查人员): the selection, as a pure function of a seed and two snapshots.

Nothing here reads the database, the clock or a random source: given a draw's seed, its population snapshot and its
inspectors' snapshot, anyone recomputes the same result, with this module or with any language from the description
in mobile_api_spec/API.md ("How a draw is made and recomputed"). The service draws the seed from
`secrets.token_bytes(32)` before calling `select`, and stores seed, snapshots and result together.

- Population snapshot: the enterprise ids (lower-case, hyphenated UUIDs), sorted, joined with "\\n" (no final line
  break). `population_hash` = sha256 of its UTF-8 bytes, in hex.
- Inspectors' snapshot: canonical JSON (keys sorted, no spaces, UTF-8) of `{"conflicts": {enterprise: [inspector,
  ...]}, "inspectors": [inspector, ...], "previous": {enterprise: [inspector, ...]}}`, every list sorted; `conflicts`
  lists the declared conflicts (only enterprises of the population that have one), `previous` the team of each
  enterprise's latest task in an earlier draw of the same plan. `inspectors_hash` = sha256 of it, in hex.
- Enterprises (a `general` rule: sampled): ordered by HMAC-SHA256(seed, "enterprise:" + id) (the 32-byte digests
  compared as unsigned big-endian numbers, the id breaking a tie), the first `count` taken. A `key` rule is not
  sampled: every enterprise of the population, in id order.
- Inspectors, per task (enterprise e, visit v = 1, 2, ...): the candidates are the snapshot's inspectors without
  those with a conflict for e, in id order (m of them; fewer than k is an error). The first k + 1 positions of a
  Fisher-Yates shuffle of the candidates are drawn with r_i = int(HMAC-SHA256(seed, "inspector:e:v:i")) mod (m - i):
  swap position i with position i + r_i, for i = 0 .. min(k + 1, m) - 1. The team is positions 0 .. k - 1, unless
  it is exactly the enterprise's previous team (for visit 1 the snapshot's `previous`, for a later visit the team
  of the visit before) and m > k: then position k takes the place of position k - 1.

Ordering every inspector by HMAC for every task would cost m HMACs a task (500 inspectors: about 0.8 ms of CPU a
task, seconds for a few thousand tasks); the partial shuffle costs k + 1, and is as uniform.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ENTERPRISE_DOMAIN = "enterprise:"
INSPECTOR_DOMAIN = "inspector:"


@dataclass(frozen=True)
class Assignment:
    enterprise_id: str
    visit: int
    inspector_ids: tuple[str, ...]  # sorted


@dataclass(frozen=True)
class InspectorSnapshot:
    inspectors: tuple[str, ...]
    conflicts: Mapping[str, tuple[str, ...]]
    previous: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(
        cls, inspectors: Iterable[str], conflicts: Mapping[str, Iterable[str]], previous: Mapping[str, Iterable[str]]
    ) -> InspectorSnapshot:
        def clean(groups: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
            return {k: tuple(sorted(set(v))) for k, v in sorted(groups.items()) if v}

        return cls(tuple(sorted(set(inspectors))), clean(conflicts), clean(previous))

    def text(self) -> str:
        content = {
            "conflicts": {k: list(v) for k, v in self.conflicts.items()},
            "inspectors": list(self.inspectors),
            "previous": {k: list(v) for k, v in self.previous.items()},
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def parse(cls, text: str) -> InspectorSnapshot:
        """The snapshot a stored text says, taken as it is (its hash, not this, tells whether it was altered)."""
        content = json.loads(text)
        return cls(
            tuple(content["inspectors"]),
            {k: tuple(v) for k, v in content["conflicts"].items()},
            {k: tuple(v) for k, v in content["previous"].items()},
        )


class NotEnoughInspectors(Exception):
    def __init__(self, enterprise_id: str, eligible: int, needed: int) -> None:
        super().__init__(f"enterprise {enterprise_id}: {eligible} eligible inspectors, {needed} needed")
        self.enterprise_id, self.eligible, self.needed = enterprise_id, eligible, needed


def population_text(enterprise_ids: Iterable[str]) -> str:
    return "\n".join(sorted(set(enterprise_ids)))


def parse_population(text: str) -> list[str]:
    return text.split("\n") if text else []


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _mac(seed: bytes, message: str) -> bytes:
    return hmac.digest(seed, message.encode("utf-8"), "sha256")


def rank_enterprises(seed: bytes, enterprise_ids: Iterable[str]) -> list[str]:
    """The population in draw order: by HMAC-SHA256(seed, "enterprise:" + id), then by id."""
    return sorted(enterprise_ids, key=lambda e: (_mac(seed, ENTERPRISE_DOMAIN + e), e))


def draw_team(seed: bytes, enterprise_id: str, visit: int, candidates: list[str], k: int, previous: frozenset[str]) -> tuple[str, ...]:
    """k of the candidates (sorted ids): a partial Fisher-Yates shuffle driven by HMAC, avoiding the previous team
    where another team exists."""
    m = len(candidates)
    if m < k:
        raise NotEnoughInspectors(enterprise_id, m, k)
    moved: dict[int, int] = {}  # position -> index into candidates, where the shuffle changed it
    order: list[str] = []
    for i in range(min(k + 1, m)):
        r = int.from_bytes(_mac(seed, f"{INSPECTOR_DOMAIN}{enterprise_id}:{visit}:{i}"), "big") % (m - i)
        j = i + r
        at_i, at_j = moved.get(i, i), moved.get(j, j)
        moved[i], moved[j] = at_j, at_i
        order.append(candidates[at_j])
    team = order[:k]
    if m > k and set(team) == previous:
        team = [*order[: k - 1], order[k]]
    return tuple(sorted(team))


def select(
    seed: bytes, population: list[str], snapshot: InspectorSnapshot, *, count: int | None, visits: int, inspectors_per_task: int
) -> list[Assignment]:
    """The draw's tasks, in order: `count` sampled enterprises (None: every one, for a key rule), `visits` tasks each."""
    chosen = rank_enterprises(seed, population)[:count] if count is not None else sorted(population)
    pool = list(snapshot.inspectors)
    result: list[Assignment] = []
    for enterprise_id in chosen:
        conflicted = set(snapshot.conflicts.get(enterprise_id, ()))
        candidates = [i for i in pool if i not in conflicted] if conflicted else pool
        previous = frozenset(snapshot.previous.get(enterprise_id, ()))
        for visit in range(1, visits + 1):
            team = draw_team(seed, enterprise_id, visit, candidates, inspectors_per_task, previous)
            result.append(Assignment(enterprise_id, visit, team))
            previous = frozenset(team)
    return result


@dataclass(frozen=True)
class Verdict:
    valid: bool
    population_hash_matches: bool
    inspectors_hash_matches: bool
    selection_matches: bool


def verify(
    seed_hex: str,
    population: str,
    population_hash: str,
    inspectors: str,
    inspectors_hash: str,
    *,
    count: int | None,
    visits: int,
    inspectors_per_task: int,
    recorded: Iterable[Assignment],
) -> Verdict:
    """Recompute a stored draw: both snapshots must hash to what was stored, and the selection from the seed and the
    snapshots must be exactly the recorded tasks."""
    population_ok = sha256_hex(population) == population_hash
    inspectors_ok = sha256_hex(inspectors) == inspectors_hash
    try:
        seed = bytes.fromhex(seed_hex)
        again = select(
            seed,
            parse_population(population),
            InspectorSnapshot.parse(inspectors),
            count=count,
            visits=visits,
            inspectors_per_task=inspectors_per_task,
        )
        selection_ok = sorted(again, key=_key) == sorted(recorded, key=_key)
    except (ValueError, KeyError, TypeError, NotEnoughInspectors):  # a mangled seed or snapshot recomputes nothing
        selection_ok = False
    return Verdict(population_ok and inspectors_ok and selection_ok, population_ok, inspectors_ok, selection_ok)


def _key(a: Assignment) -> tuple[str, int]:
    return a.enterprise_id, a.visit
