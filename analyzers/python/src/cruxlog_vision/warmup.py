"""``warmup.plan``: a warm-up plan for a climbing session that just started.

Pure and deterministic: the same params always give the same plan.

Rules (plan id ``warmup-v1``; change the id when the rules change in a way consumers could see):

* Length: about 1/6 (≈17 %) of the planned session, rounded half up, clamped to 10..25 minutes;
  15 minutes when the planned length is unknown (the value for a typical 90-minute session).
* Structure: pulse raiser -> joint mobility (shoulders/hips, then wrists/fingers) -> progressive
  easy climbing -> discipline-specific finish:

  - ``boulder``: progressive finger loading (jugs -> edges -> crimps) and a power primer;
  - ``board``: like ``boulder`` but with more of the time on progressive finger loading on the
    board itself;
  - ``sport``/``trad``/``top_rope``: easy mileage, then one route closer to the working grade.

* Outdoors the approach is the pulse raiser: the first step becomes a short "approach" step
  (stay warm while gearing up) and the freed time goes to the other steps.
* Minutes are split by fixed weights with the largest-remainder method (ties: earlier step
  first); every step gets at least one minute and the steps always add up to ``total_minutes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cruxlog_vision.protocol import InvalidInputError, JsonObject, json_type_name

PLAN_ID: Final = "warmup-v1"
DEFAULT_MINUTES: Final = 15
MIN_MINUTES: Final = 10
MAX_MINUTES: Final = 25
SESSION_FRACTION_DENOMINATOR: Final = 6
"""Warm-up ≈ planned session / 6 (≈17 %)."""
MAX_PLANNED_MINUTES: Final = 24 * 60
MAX_SESSION_ID_CHARS: Final = 200


class Discipline(StrEnum):
    BOULDER = "boulder"
    SPORT = "sport"
    TRAD = "trad"
    TOP_ROPE = "top_rope"
    BOARD = "board"


@dataclass(frozen=True, slots=True)
class WarmupParams:
    session_id: str
    discipline: Discipline
    indoor: bool
    planned_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class WarmupStep:
    name: str
    minutes: int
    cue: str

    def to_dict(self) -> JsonObject:
        return {"name": self.name, "minutes": self.minutes, "cue": self.cue}


@dataclass(frozen=True, slots=True)
class WarmupPlan:
    plan_id: str
    steps: tuple[WarmupStep, ...]
    total_minutes: int

    def to_dict(self) -> JsonObject:
        return {
            "plan_id": self.plan_id,
            "steps": [step.to_dict() for step in self.steps],
            "total_minutes": self.total_minutes,
        }


@dataclass(frozen=True, slots=True)
class _Template:
    name: str
    weight: int
    cue: str


# ------------------------------------------------------------------------------------------------
# validation


def _require(raw: Mapping[str, object], field: str) -> object:
    if field not in raw or raw[field] is None:
        raise InvalidInputError(field, "is required")
    return raw[field]


def parse_params(raw: Mapping[str, object]) -> WarmupParams:
    """Validate ``warmup.plan`` params.  Unknown keys are ignored (forward compatibility).

    Raises :class:`InvalidInputError` naming the first offending field.
    """
    session_id = _require(raw, "session_id")
    if not isinstance(session_id, str):
        raise InvalidInputError("session_id", f"must be a string, got {json_type_name(session_id)}")
    if not session_id.strip():
        raise InvalidInputError("session_id", "must not be empty")
    if len(session_id) > MAX_SESSION_ID_CHARS:
        raise InvalidInputError("session_id", f"must be at most {MAX_SESSION_ID_CHARS} characters")

    discipline_raw = _require(raw, "discipline")
    allowed = ", ".join(repr(d.value) for d in Discipline)
    if not isinstance(discipline_raw, str):
        raise InvalidInputError(
            "discipline", f"must be one of {allowed}, got {json_type_name(discipline_raw)}"
        )
    try:
        discipline = Discipline(discipline_raw)
    except ValueError:
        raise InvalidInputError(
            "discipline", f"must be one of {allowed}, got {discipline_raw!r}"
        ) from None

    indoor = _require(raw, "indoor")
    if not isinstance(indoor, bool):
        raise InvalidInputError("indoor", f"must be a boolean, got {json_type_name(indoor)}")

    planned = raw.get("planned_minutes")
    if planned is not None:
        if isinstance(planned, bool) or not isinstance(planned, int):
            raise InvalidInputError(
                "planned_minutes", f"must be an integer or null, got {json_type_name(planned)}"
            )
        if planned < 0:
            raise InvalidInputError("planned_minutes", f"must not be negative, got {planned}")
        if planned > MAX_PLANNED_MINUTES:
            raise InvalidInputError(
                "planned_minutes", f"must be at most {MAX_PLANNED_MINUTES}, got {planned}"
            )

    return WarmupParams(
        session_id=session_id,
        discipline=discipline,
        indoor=indoor,
        planned_minutes=planned,
    )


# ------------------------------------------------------------------------------------------------
# rules


def warmup_minutes(planned_minutes: int | None) -> int:
    """Warm-up length for a session of ``planned_minutes`` (``None``: unknown)."""
    if planned_minutes is None:
        return DEFAULT_MINUTES
    # round half up of planned / 6, in integers
    share = (2 * planned_minutes + SESSION_FRACTION_DENOMINATOR) // (
        2 * SESSION_FRACTION_DENOMINATOR
    )
    return max(MIN_MINUTES, min(MAX_MINUTES, share))


_PULSE_RAISER: Final = _Template(
    "pulse raiser",
    3,
    "Easy cardio (skipping, jogging on the spot, rowing, jumping jacks) until you breathe a "
    "little harder and feel warm.",
)
_APPROACH: Final = _Template(
    "approach",
    1,
    "The walk-in is your pulse raiser. Keep moving while you gear up (brisk walking, arm "
    "swings) so you don't cool down before the first climb.",
)
_SHOULDERS_HIPS: Final = _Template(
    "shoulder and hip mobility",
    2,
    "Arm circles, scapular shrugs, band pull-aparts or wall slides; then leg swings, hip "
    "circles, a few deep squats and high steps.",
)
_WRISTS_FINGERS: Final = _Template(
    "wrist and finger mobility",
    2,
    "Wrist circles, gentle flexor and extensor stretches, open and close your fists, spread "
    "your fingers and run tendon glides. No forceful stretching.",
)

_FINISH: Final[Mapping[Discipline, Sequence[_Template]]] = {
    Discipline.BOULDER: (
        _Template(
            "easy climbing",
            3,
            "Traverse or climb 3-5 problems well below your limit: quiet feet, straight arms, "
            "relaxed breathing.",
        ),
        _Template(
            "progressive finger loading",
            3,
            "Work from jugs to edges to crimps: repeat easy problems on smaller and smaller "
            "holds, open hand before half crimp. Stay well short of pumped.",
        ),
        _Template(
            "power primer",
            2,
            "2-3 moderate problems with bigger or dynamic moves at about 70-80% effort, full "
            "rest between, before your first hard attempt.",
        ),
    ),
    Discipline.BOARD: (
        _Template(
            "easy climbing",
            2,
            "Climb or traverse jugs on the wall, or on the board at its lowest angle: 3-4 easy "
            "circuits with a relaxed grip.",
        ),
        _Template(
            "progressive finger loading",
            4,
            "On the board, load the fingers in steps: feet-on hangs or easy problems on jugs, "
            "then edges, then crimps, open hand first; 5-10 s efforts with generous rest.",
        ),
        _Template(
            "power primer",
            2,
            "2-3 benchmarks several grades below your max, full rest between, before limit "
            "attempts.",
        ),
    ),
    Discipline.SPORT: (
        _Template(
            "easy mileage",
            5,
            "1-2 routes (or long traverses) at least 3 grades below your limit: shake out, "
            "breathe, clip calmly and climb through a light pump.",
        ),
        _Template(
            "progressive route",
            3,
            "One route about 2 grades below your working grade at onsight pace; rest well "
            "before redpoint attempts.",
        ),
    ),
    Discipline.TRAD: (
        _Template(
            "easy mileage",
            5,
            "A pitch well below your limit, placing gear generously: smooth movement, calm "
            "breathing, solid placements.",
        ),
        _Template(
            "progressive route",
            3,
            "A second pitch nearer your working grade but comfortably within your ability "
            "before committing to harder leads.",
        ),
    ),
    Discipline.TOP_ROPE: (
        _Template(
            "easy mileage",
            5,
            "1-2 easy routes focusing on precise footwork and straight arms; lower off and "
            "shake out.",
        ),
        _Template(
            "progressive route",
            3,
            "One route closer to your working grade, then rest before your harder attempts.",
        ),
    ),
}


def _templates(params: WarmupParams) -> list[_Template]:
    first = _PULSE_RAISER if params.indoor else _APPROACH
    return [first, _SHOULDERS_HIPS, _WRISTS_FINGERS, *_FINISH[params.discipline]]


def split_minutes(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` minutes by ``weights`` (largest remainder, ties to the earlier step).

    Every share is at least 1 when ``total >= len(weights)``; the shares always sum to ``total``.
    """
    if not weights or any(w <= 0 for w in weights):
        raise ValueError("weights must be non-empty and positive")
    if total < 0:
        raise ValueError("total must not be negative")
    weight_sum = sum(weights)
    shares = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        shares[index] += 1
    # at least one minute per step, taken from the largest step (ties: the later one)
    for index, share in enumerate(shares):
        if share == 0:
            donor = max(range(len(shares)), key=lambda i: (shares[i], i))
            if shares[donor] <= 1:
                break
            shares[donor] -= 1
            shares[index] = 1
    return shares


def plan_warmup(params: WarmupParams) -> WarmupPlan:
    total = warmup_minutes(params.planned_minutes)
    templates = _templates(params)
    minutes = split_minutes(total, [t.weight for t in templates])
    steps = tuple(
        WarmupStep(name=t.name, minutes=m, cue=t.cue)
        for t, m in zip(templates, minutes, strict=True)
    )
    return WarmupPlan(plan_id=PLAN_ID, steps=steps, total_minutes=total)


def handle(params: JsonObject) -> JsonObject:
    """Protocol method ``warmup.plan``."""
    return plan_warmup(parse_params(params)).to_dict()
