"""What a device's admin and operating state allow, as EdgeX answers it: a LOCKED device takes no commands,
and a DOWN one neither (423 Locked for both), checked by core-command before relaying and by the device
service before executing."""

from __future__ import annotations

from edgeplane_common.errors import Locked
from edgeplane_common.models import AdminState, Device, OperatingState


def check_commandable(device: Device, *, allow_down: bool = False) -> None:
    """Locked unless `device` may be commanded. `allow_down`: a DOWN device may still be read, as autoevents
    keep polling one to see it recover; a LOCKED device never."""
    if device.admin_state is AdminState.LOCKED:
        raise Locked(f"device {device.name!r} is LOCKED (adminState); unlock it in core-metadata to command it")
    if device.operating_state is OperatingState.DOWN and not allow_down:
        raise Locked(f"device {device.name!r} is DOWN (operatingState): its device service could not reach it")
