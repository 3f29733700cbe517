"""EdgeX topics mapped to NATS subjects: `/` becomes `.`, and names inside a subject are escaped."""

from __future__ import annotations

# Characters NATS gives meaning to inside a subject token, plus `%` (our escape character).
_ESCAPES = {"%": "%25", ".": "%2E", "*": "%2A", ">": "%3E", " ": "%20", "\t": "%09"}


def escape(name: str) -> str:
    """Escape a device/profile/service/resource name so it is exactly one NATS subject token."""
    return "".join(_ESCAPES.get(ch, ch) for ch in name)


def unescape(token: str) -> str:
    out = token
    for ch, esc in reversed(list(_ESCAPES.items())):
        out = out.replace(esc, ch)
    return out


def subject(*parts: str) -> str:
    """Join already-escaped tokens (or wildcards) into a subject."""
    return ".".join(parts)


class Topics:
    """The EdgeX v3 topic scheme with the `edgex` base topic."""

    BASE = "edgex"
    EVENTS_STREAM = "EDGEX_EVENTS"

    @staticmethod
    def events(service: str, profile: str, device: str, source: str) -> str:
        return subject("edgex", "events", "device", escape(service), escape(profile), escape(device), escape(source))

    EVENTS_ALL = "edgex.events.device.>"

    @staticmethod
    def events_of(service: str) -> str:
        """Every event one device service publishes."""
        return subject("edgex", "events", "device", escape(service), ">")

    @staticmethod
    def core_events(service: str, profile: str, device: str, source: str) -> str:
        """An event added over core-data's REST API, as EdgeX core-data republishes it (`edgex.events.core`)."""
        return subject("edgex", "events", "core", escape(service), escape(profile), escape(device), escape(source))

    DEADLETTER_STREAM = "EDGEX_DEADLETTER"
    DEADLETTER_ALL = "edgex.deadletter.>"

    @staticmethod
    def deadletter(stream: str, durable: str) -> str:
        """Where a durable consumer puts the messages it gave up on (the original subject travels in a
        header, so this subject stays short whatever the original one was)."""
        return subject("edgex", "deadletter", escape(stream), escape(durable))

    @staticmethod
    def system_event(source: str, type_: str, action: str, owner: str, profile: str | None = None) -> str:
        parts = ["edgex", "system-events", escape(source), type_, action, escape(owner)]
        if profile:
            parts.append(escape(profile))
        return subject(*parts)

    SYSTEM_EVENTS_ALL = "edgex.system-events.>"

    @staticmethod
    def system_events_of(type_: str, *, owner: str | None = None, source: str = "core-metadata") -> str:
        """Every system event (any action) about `type_` entities from `source`; with `owner`, only those of
        that owner (a device service for devices and watchers), which carry a profile token after it."""
        if owner is None:
            return subject("edgex", "system-events", escape(source), type_, ">")
        return subject("edgex", "system-events", escape(source), type_, "*", escape(owner), ">")

    @staticmethod
    def command_request(service: str, device: str, command: str, method: str) -> str:
        return subject(
            "edgex",
            "device",
            "command",
            "request",
            escape(service),
            escape(device),
            escape(command),
            method.lower(),
        )

    @staticmethod
    def command_request_all(service: str) -> str:
        return subject("edgex", "device", "command", "request", escape(service), ">")

    @staticmethod
    def rule_alerts(rule_id: str) -> str:
        """Alerts a rule of the rules engine publishes (its `publish` action's default subject)."""
        return subject("edgex", "rules-engine", "alerts", escape(rule_id))

    RULE_ALERTS_ALL = "edgex.rules-engine.alerts.>"

    @staticmethod
    def app_buffer(service: str) -> str:
        """An app service's own store-and-forward buffer (stream `app_buffer_stream(service)`)."""
        return subject("edgex", "app-services", "buffer", escape(service))

    @staticmethod
    def app_buffer_stream(service: str) -> str:
        """JetStream stream name of an app service's buffer (letters, digits, `_` and `-` only)."""
        safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_-") else "_" for ch in service)
        return f"APP_{safe.upper()}_BUFFER"

    @staticmethod
    def device_validation(service: str) -> str:
        return subject("edgex", "device", "validate", escape(service))
