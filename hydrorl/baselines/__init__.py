"""What agents are measured against: the perfect-foresight bound, the SDP benchmark, naive rules."""

from hydrorl.baselines.bound import BoundResult, perfect_foresight, perfect_foresight_all
from hydrorl.baselines.naive import ConstantRelease, PriceThreshold
from hydrorl.baselines.sdp import WaterValuePolicy, WaterValues, water_values

__all__ = [
    "BoundResult",
    "ConstantRelease",
    "PriceThreshold",
    "WaterValuePolicy",
    "WaterValues",
    "perfect_foresight",
    "perfect_foresight_all",
    "water_values",
]
