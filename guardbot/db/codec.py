"""Observations and actions are frozen dataclasses; rows keep them as (kind, JSON)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from guardbot.core.actions import ACTIONS, Action
from guardbot.core.observations import OBSERVATIONS, Observation


def encode(obj: Observation | Action) -> tuple[str, str]:
    return type(obj).__name__, json.dumps(dataclasses.asdict(obj), separators=(",", ":"))


def decode(kind: str, payload: str, registry: dict[str, type]) -> Any:
    return registry[kind](**json.loads(payload))


def decode_observation(kind: str, payload: str) -> Observation:
    return decode(kind, payload, OBSERVATIONS)


def decode_action(kind: str, payload: str) -> Action:
    return decode(kind, payload, ACTIONS)
