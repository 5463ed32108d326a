"""What an agent observes, saved with it: one observation spec from training to evaluation.

An agent's observation depends on its training settings (forecast horizon, context
features, the water value feature, the spill guard, whether window ends are cuts), on
the training forecast's scales (price mean and spread, mean inflow, the water price) and
on the SDP water values it was shown.  :class:`ObservationSpec` holds all of it; the
recipe attaches it to the model (``model.hydrorl_spec``), so every checkpoint carries it
and ``hydrorl/Cascade-v0``, :class:`~hydrorl.env.CascadeVecEnv` and
:func:`~hydrorl.evaluation.evaluate_agent` play a saved agent with nothing else at hand.
A checkpoint whose spec does not fit the problem (other reservoirs or stations, another
observation size) is refused with an error that says what differs.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from hydrorl.errors import ValidationError
from hydrorl.physics import Problem
from hydrorl.physics.episode import EpisodeDesign, ObservationLayout, Potential

if TYPE_CHECKING:
    from hydrorl.baselines.sdp import WaterValues

#: The attribute of an SB3 model that carries its spec (saved and loaded with the model).
ATTRIBUTE = "hydrorl_spec"


@dataclasses.dataclass(frozen=True)
class ObservationSpec:
    """How an agent sees a problem and how its actions are read (see the module docstring)."""

    reservoirs: tuple[str, ...]
    stations: tuple[str, ...]
    forecast_horizon_steps: int
    context_features: bool
    spill_guard: bool
    bootstrap_window_ends: bool
    price_mean: float
    price_std: float
    inflow_mean: float
    water_price_eur_mwh: float
    #: The SDP water values shown as a feature (their arrays), or None.
    water_values: dict[str, Any] | None = None
    #: The forecast whose expectations are shown as features (a StateForecast's arrays), or None.
    forecast: dict[str, Any] | None = None
    #: A guided agent's planner (lookahead_days, residual_scale, and the water values and
    #: forecast it plans with), or None: the agent's actions are discharges.
    guide: dict[str, Any] | None = None

    @classmethod
    def of_training(
        cls, settings: Any, training: Problem, values: WaterValues | None, forecast: Any = None
    ) -> ObservationSpec:
        """The spec of an agent of ``settings`` trained on ``training`` with ``values``."""
        c = training.cascade
        shown = None
        if settings.water_value_feature:
            if values is None:
                raise ValueError("the water value feature needs the water values")
            shown = _values_dict(values)
        guide = None
        if settings.guided:
            if values is None or forecast is None:
                raise ValueError("a guided agent's planner needs the water values and forecast")
            guide = {
                "lookahead_days": float(settings.imitation_lookahead_days),
                "residual_scale": float(settings.residual_scale),
                "water_values": _values_dict(values),
                "forecast": forecast.to_dict(),
            }
        return cls(
            tuple(c.reservoir_names),
            tuple(c.station_names),
            int(settings.forecast_horizon_steps),
            bool(settings.context_features),
            bool(settings.spill_guard),
            bool(settings.bootstrap_window_ends),
            training.price_mean,
            training.price_std,
            training.inflow_mean,
            training.water_price_eur_mwh,
            shown,
            forecast.to_dict() if settings.forecast_features else None,
            guide,
        )

    # ------------------------------------------------------------------ with a model

    def attach(self, model: Any) -> None:
        setattr(model, ATTRIBUTE, self.to_dict())

    @classmethod
    def of(cls, model: Any) -> ObservationSpec:
        """The spec a model carries; a clear error if it has none (saved before specs)."""
        data = getattr(model, ATTRIBUTE, None)
        if data is None:
            raise ValidationError(
                "this agent carries no observation spec (it was saved by an older HydroRL or "
                "outside the recipe): play it with evaluate_policy and its training settings"
            )
        return cls.from_dict(data)

    @classmethod
    def carried_by(cls, model: Any) -> ObservationSpec | None:
        data = getattr(model, ATTRIBUTE, None)
        return None if data is None else cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "reservoirs": list(self.reservoirs),
                "stations": list(self.stations)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObservationSpec:
        values = dict(data)
        values["reservoirs"] = tuple(values["reservoirs"])
        values["stations"] = tuple(values["stations"])
        return cls(**values)

    # ------------------------------------------------------------------ on a problem

    @property
    def layout(self) -> ObservationLayout:
        return ObservationLayout(
            len(self.reservoirs),
            self.forecast_horizon_steps,
            self.water_values is not None,
            self.context_features,
            _expected_counts() if self.forecast is not None else (0, 0),
            len(self.stations) if self.guide is not None else 0,
        )

    def check(self, problem: Problem, model: Any = None) -> None:
        """Refuse a problem (or a model) this spec does not fit, saying what differs."""
        c = problem.cascade
        for what, mine, theirs in (
            ("reservoirs", self.reservoirs, tuple(c.reservoir_names)),
            ("power stations", self.stations, tuple(c.station_names)),
        ):
            if mine != theirs:
                raise ValidationError(
                    f"this agent was trained on a system with {what} {list(mine)}, "
                    f"not {list(theirs)}: it cannot play this problem"
                )
        if model is not None:
            shape = getattr(getattr(model, "observation_space", None), "shape", None)
            if shape is not None and tuple(shape) != (self.layout.size,):
                raise ValidationError(
                    f"the agent's checkpoint observes {shape[0]} features but its spec lays out "
                    f"{self.layout.size}: the checkpoint and its spec do not match"
                )

    def view(self, problem: Problem) -> Problem:
        """``problem`` seen with the training forecast's scales and water price."""
        return problem.with_scales(
            self.water_price_eur_mwh, self.price_mean, self.price_std, self.inflow_mean
        )

    def design(self, **over: Any) -> EpisodeDesign:
        """Whole-horizon episodes as the agent observes them (``over``: other fields)."""
        return EpisodeDesign(
            forecast_horizon_steps=self.forecast_horizon_steps,
            spill_guard=self.spill_guard,
            context_features=self.context_features,
            bootstrap_window_ends=self.bootstrap_window_ends,
            forecast_features=self.forecast is not None,
            residual_scale=self.residual_scale,
            **over,
        )

    @property
    def residual_scale(self) -> float:
        return 0.0 if self.guide is None else float(self.guide["residual_scale"])

    def guide_of(self, problem: Problem) -> Any:
        """A guided agent's planner on ``problem`` (seen as the agent sees it), or None."""
        if self.guide is None:
            return None
        from hydrorl.baselines.expectation import StateForecast
        from hydrorl.baselines.foresight import PlannerGuide
        from hydrorl.baselines.sdp import WaterValues
        from hydrorl.training.imitation import teacher

        g = self.guide
        values = WaterValues(**{k: _array(v) for k, v in g["water_values"].items()})
        forecast = StateForecast.from_dict(g["forecast"])
        return PlannerGuide(teacher(problem, values, g["lookahead_days"], forecast.bind))

    def marginal(self, problem: Problem) -> Potential | None:
        if self.water_values is None:
            return None
        from hydrorl.baselines.sdp import WaterValues

        values = WaterValues(**{k: _array(v) for k, v in self.water_values.items()})
        return values.marginal(problem)

    def expected(self, problem: Problem) -> tuple[np.ndarray, np.ndarray] | None:
        """The forecast features of ``problem`` as the agent sees them (None if it does not)."""
        if self.forecast is None:
            return None
        from hydrorl.baselines.expectation import StateForecast, expected

        return expected(StateForecast.from_dict(self.forecast), problem)

    def evaluation_options(self, problem: Problem) -> dict[str, Any]:
        """:func:`~hydrorl.evaluation.evaluate_policy` keywords to play the agent on ``problem``."""
        return {
            "expected": self.expected(problem),
            "forecast_horizon_steps": self.forecast_horizon_steps,
            "marginal": self.marginal(problem),
            "spill_guard": self.spill_guard,
            "context_features": self.context_features,
            "bootstrap_window_ends": self.bootstrap_window_ends,
            "guide": self.guide_of(problem),
            "residual_scale": self.residual_scale,
        }


def as_spec(agent_or_spec: Any) -> ObservationSpec | None:
    """The spec of an agent (or the spec itself, or its dict); None for None."""
    if agent_or_spec is None or isinstance(agent_or_spec, ObservationSpec):
        return agent_or_spec
    if isinstance(agent_or_spec, dict):
        return ObservationSpec.from_dict(agent_or_spec)
    return ObservationSpec.of(agent_or_spec)


def _expected_counts() -> tuple[int, int]:
    from hydrorl.baselines.expectation import SUMMARY_INFLOW_DAYS, SUMMARY_PRICE_DAYS

    return len(SUMMARY_PRICE_DAYS), len(SUMMARY_INFLOW_DAYS)


def _values_dict(values: WaterValues) -> dict[str, Any]:
    return {f.name: _plain(getattr(values, f.name)) for f in dataclasses.fields(values)}


def _plain(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else float(value)


def _array(value: Any) -> Any:
    return np.asarray(value, dtype=float) if isinstance(value, list) else float(value)
