"""Device-profile rules EdgeX enforces beyond the field types (the rules live in common, next to the model,
so that request DTOs refuse a broken profile whole, as EdgeX's do)."""

from __future__ import annotations

from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models import DeviceProfile
from edgeplane_common.models.metadata import profile_problem


def validate_profile(profile: DeviceProfile) -> None:
    """Raise ContractInvalid naming the first broken rule."""
    problem = profile_problem(profile)
    if problem:
        raise ContractInvalid(problem)
