"""Rules and validation of ``warmup.plan``."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from cruxlog_vision.protocol import InvalidInputError
from cruxlog_vision.warmup import (
    PLAN_ID,
    Discipline,
    WarmupParams,
    handle,
    parse_params,
    plan_warmup,
    split_minutes,
    warmup_minutes,
)


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "session_id": "s-1",
        "discipline": "boulder",
        "indoor": True,
        "planned_minutes": None,
    }
    base.update(overrides)
    return base


def minutes_by_step(result: dict[str, Any]) -> list[tuple[str, int]]:
    return [(step["name"], step["minutes"]) for step in result["steps"]]


@pytest.mark.parametrize(
    ("planned", "total"),
    [
        (None, 15),  # unknown: default
        (0, 10),  # floor
        (30, 10),
        (60, 10),
        (62, 10),  # 10.33 -> 10
        (63, 11),  # 10.5 rounds half up
        (90, 15),
        (100, 17),  # 16.67 -> 17
        (120, 20),
        (150, 25),
        (151, 25),  # ceiling
        (600, 25),
        (1440, 25),
    ],
)
def test_warmup_minutes(planned: int | None, total: int) -> None:
    assert warmup_minutes(planned) == total


def test_indoor_boulder_default_plan() -> None:
    result = handle(params())
    assert result["plan_id"] == PLAN_ID == "warmup-v1"
    assert result["total_minutes"] == 15
    assert minutes_by_step(result) == [
        ("pulse raiser", 3),
        ("shoulder and hip mobility", 2),
        ("wrist and finger mobility", 2),
        ("easy climbing", 3),
        ("progressive finger loading", 3),
        ("power primer", 2),
    ]
    assert "crimp" in result["steps"][4]["cue"]


def test_outdoor_sport_short_session() -> None:
    result = handle(params(discipline="sport", indoor=False, planned_minutes=60))
    assert result["total_minutes"] == 10
    assert minutes_by_step(result) == [
        ("approach", 1),
        ("shoulder and hip mobility", 2),
        ("wrist and finger mobility", 1),
        ("easy mileage", 4),
        ("progressive route", 2),
    ]
    assert "pulse raiser" in result["steps"][0]["cue"]


def test_indoor_board_session() -> None:
    result = handle(params(discipline="board", planned_minutes=120))
    assert result["total_minutes"] == 20
    assert minutes_by_step(result) == [
        ("pulse raiser", 4),
        ("shoulder and hip mobility", 3),
        ("wrist and finger mobility", 3),
        ("easy climbing", 3),
        ("progressive finger loading", 5),
        ("power primer", 2),
    ]
    assert "board" in result["steps"][4]["cue"]


def test_outdoor_trad_long_day_is_capped() -> None:
    result = handle(params(discipline="trad", indoor=False, planned_minutes=300))
    assert result["total_minutes"] == 25
    assert minutes_by_step(result) == [
        ("approach", 2),
        ("shoulder and hip mobility", 4),
        ("wrist and finger mobility", 4),
        ("easy mileage", 9),
        ("progressive route", 6),
    ]
    assert "gear" in result["steps"][3]["cue"]


def test_indoor_top_rope() -> None:
    result = handle(params(discipline="top_rope", planned_minutes=100))
    assert result["total_minutes"] == 17
    assert minutes_by_step(result) == [
        ("pulse raiser", 4),
        ("shoulder and hip mobility", 2),
        ("wrist and finger mobility", 2),
        ("easy mileage", 6),
        ("progressive route", 3),
    ]


@pytest.mark.parametrize(
    ("discipline", "indoor"), list(itertools.product(list(Discipline), [True, False]))
)
def test_invariants_for_every_discipline_and_length(discipline: Discipline, indoor: bool) -> None:
    for planned in [None, *range(0, 400, 7), 1440]:
        plan = plan_warmup(WarmupParams("s", discipline, indoor, planned))
        assert plan.total_minutes == warmup_minutes(planned)
        assert sum(step.minutes for step in plan.steps) == plan.total_minutes
        assert all(step.minutes >= 1 for step in plan.steps)
        assert 10 <= plan.total_minutes <= 25
        names = [step.name for step in plan.steps]
        assert names[0] == ("pulse raiser" if indoor else "approach")
        assert names[1:3] == ["shoulder and hip mobility", "wrist and finger mobility"]
        assert len(set(names)) == len(names)
        assert all(step.cue and "\n" not in step.cue for step in plan.steps)


def test_longer_sessions_never_get_shorter_warmups() -> None:
    totals = [warmup_minutes(m) for m in range(1441)]
    assert totals == sorted(totals)


def test_plans_are_deterministic_and_json_serialisable() -> None:
    first = handle(params(discipline="sport", planned_minutes=75))
    second = handle(params(discipline="sport", planned_minutes=75, session_id="other"))
    assert first == second
    assert json.loads(json.dumps(first, allow_nan=False)) == first
    assert set(first) == {"plan_id", "steps", "total_minutes"}
    assert all(set(step) == {"name", "minutes", "cue"} for step in first["steps"])


def test_unknown_keys_are_ignored_and_planned_minutes_may_be_absent() -> None:
    raw = params(gym="Boulderwelt", future_field=[1])
    del raw["planned_minutes"]
    assert parse_params(raw) == WarmupParams("s-1", Discipline.BOULDER, True, None)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"session_id": None}, "session_id", "is required"),
        ({"session_id": 12}, "session_id", "must be a string, got number"),
        ({"session_id": "  "}, "session_id", "must not be empty"),
        ({"session_id": "x" * 201}, "session_id", "at most 200"),
        ({"discipline": "ice"}, "discipline", "must be one of 'boulder', 'sport'"),
        ({"discipline": "Boulder"}, "discipline", "got 'Boulder'"),
        ({"discipline": ["boulder"]}, "discipline", "got array"),
        ({"indoor": None}, "indoor", "is required"),
        ({"indoor": "true"}, "indoor", "must be a boolean, got string"),
        ({"indoor": 1}, "indoor", "must be a boolean, got number"),
        ({"planned_minutes": -1}, "planned_minutes", "must not be negative, got -1"),
        ({"planned_minutes": 90.5}, "planned_minutes", "must be an integer or null, got number"),
        ({"planned_minutes": True}, "planned_minutes", "got boolean"),
        ({"planned_minutes": "90"}, "planned_minutes", "got string"),
        ({"planned_minutes": 1441}, "planned_minutes", "at most 1440"),
    ],
)
def test_validation_errors_name_the_field(
    overrides: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        handle(params(**overrides))
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert fragment in str(info.value)


def test_missing_field_is_reported() -> None:
    raw = params()
    del raw["discipline"]
    with pytest.raises(InvalidInputError, match=r"^discipline: is required$"):
        parse_params(raw)


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (15, [3, 2, 2, 3, 3, 2], [3, 2, 2, 3, 3, 2]),
        (10, [1, 2, 2, 5, 3], [1, 2, 1, 4, 2]),
        (3, [1, 1, 1], [1, 1, 1]),
        (4, [1, 1, 1], [2, 1, 1]),  # tie goes to the earlier step
        (5, [100, 1, 1], [3, 1, 1]),  # minimum of one minute per step
        (0, [1, 2], [0, 0]),
    ],
)
def test_split_minutes(total: int, weights: list[int], expected: list[int]) -> None:
    assert split_minutes(total, weights) == expected
    assert sum(split_minutes(total, weights)) == total


@pytest.mark.parametrize(("total", "weights"), [(5, []), (5, [1, 0]), (-1, [1])])
def test_split_minutes_rejects_nonsense(total: int, weights: list[int]) -> None:
    with pytest.raises(ValueError, match="must"):
        split_minutes(total, weights)
