"""edgeplane device-service SDK: write a ProtocolDriver, the SDK does the rest."""

from edgeplane_sdk.driver import CommandRequest, CommandValue, ProtocolDriver

__all__ = ["CommandRequest", "CommandValue", "ProtocolDriver"]
