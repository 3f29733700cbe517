"""The kernel's state check (`edgeplane_common.edgex.states`), shared by core-command and the device SDK."""

from __future__ import annotations

import pytest

from edgeplane_common.edgex.states import check_commandable
from edgeplane_common.errors import Locked
from edgeplane_common.models import AdminState, Device, OperatingState


def device(admin: AdminState, operating: OperatingState) -> Device:
    return Device(name="d1", service_name="svc", profile_name="P", admin_state=admin, operating_state=operating)


def test_an_unlocked_device_that_is_up_or_unknown_may_be_commanded() -> None:
    check_commandable(device(AdminState.UNLOCKED, OperatingState.UP))
    check_commandable(device(AdminState.UNLOCKED, OperatingState.UNKNOWN))


@pytest.mark.parametrize("allow_down", [False, True])
def test_a_locked_device_answers_423_whatever_its_operating_state(allow_down: bool) -> None:
    for operating in OperatingState:
        with pytest.raises(Locked, match=r"device 'd1' is LOCKED \(adminState\)") as info:
            check_commandable(device(AdminState.LOCKED, operating), allow_down=allow_down)
        assert info.value.status_code == 423


def test_a_down_device_answers_423_unless_down_is_allowed() -> None:
    down = device(AdminState.UNLOCKED, OperatingState.DOWN)
    with pytest.raises(Locked, match=r"device 'd1' is DOWN \(operatingState\)") as info:
        check_commandable(down)
    assert info.value.status_code == 423
    check_commandable(down, allow_down=True)  # autoevents keep polling a DOWN device to see it recover
