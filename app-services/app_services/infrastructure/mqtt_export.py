"""MQTTExport (EdgeX's parameters) over aiomqtt: one connection kept open and re-made after a failure;
QoS 0 or 1 (QoS 1 waits for the broker's PUBACK, so a payload counts as exported only once the broker has
it); TLS for `ssl://`/`tls://`/`mqtts://` brokers (SkipVerify to accept any certificate); user name and
password from the parameters or from the secret store (`SecretName`, keys username/password). The topic may
hold placeholders."""

from __future__ import annotations

import contextlib
import ssl
from urllib.parse import urlsplit

import aiomqtt

from app_services.application.data import Context
from app_services.application.errors import ExportFailed, TargetNotConfigured
from app_services.application.functions.codec import SecretSource
from app_services.application.params import Params
from app_services.application.placeholders import compile_placeholders
from edgeplane_common.settings import redact_url

TLS_SCHEMES = ("ssl", "tls", "mqtts")


class MqttExporter:
    name = "MQTTExport"
    accepts = frozenset({"json", "event", "xml", "lp", "bytes"})
    max_batch = 1

    def __init__(self, p: Params, secrets: SecretSource) -> None:
        broker = p.text("BrokerAddress")
        if not broker:
            raise TargetNotConfigured("no MQTT broker (the BrokerAddress parameter, e.g. tcp://host:1883)")
        parts = urlsplit(broker if "://" in broker else f"tcp://{broker}")
        if parts.scheme not in ("tcp", "mqtt", *TLS_SCHEMES) or not parts.hostname:
            raise p.fail("BrokerAddress", f"must be tcp://host:port or ssl://host:port, got {broker!r}")
        self.tls = parts.scheme in TLS_SCHEMES
        self.host = parts.hostname
        self.port = parts.port or (8883 if self.tls else 1883)
        self.target = f"MQTT {redact_url(broker)}"
        self.topic = compile_placeholders(p.need("Topic"), "MQTTExport Topic")
        self.client_id = p.text("ClientId") or None
        qos = p.integer("QOS", 0, minimum=0)
        if qos > 1:
            raise p.fail("QOS", "must be 0 or 1")
        self.qos = qos
        self.retain = p.flag("Retain", False)
        self.skip_verify = p.flag("SkipVerify", False)
        self.auth_mode = p.choice("AuthMode", ("none", "usernamepassword"), "none")
        self.username = p.text("Username")
        self.password = p.text("Password")
        self.secret_name = p.text("SecretName")
        self.keepalive = p.integer("KeepAlive", 60, minimum=5)
        self.timeout_s = p.duration("Timeout", "10s")
        p.flag("AutoReconnect", True)  # EdgeX's; this client always reconnects
        p.flag("PersistOnError", False)  # EdgeX's; store-and-forward is the pipeline's StoreAndForward here
        self.secrets = secrets
        self._client: aiomqtt.Client | None = None

    def _credentials(self) -> tuple[str | None, str | None]:
        if self.auth_mode != "usernamepassword":
            return None, None
        if self.secret_name:
            try:
                secret = self.secrets.get(self.secret_name)
            except Exception as err:
                raise ExportFailed(f"secret {self.secret_name!r} is not in the secret store ({err})") from None
            return secret.get("username"), secret.get("password")
        return self.username, self.password

    async def _connect(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        username, password = self._credentials()
        tls_context = None
        if self.tls:
            tls_context = ssl.create_default_context()
            if self.skip_verify:
                tls_context.check_hostname = False
                tls_context.verify_mode = ssl.CERT_NONE
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=username,
            password=password,
            identifier=self.client_id,
            keepalive=self.keepalive,
            timeout=self.timeout_s,
            tls_context=tls_context,
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as err:
            raise ExportFailed(f"cannot connect to {self.host}:{self.port}: {err}", permanent=_refused(err)) from err
        self._client = client
        return client

    async def start(self) -> None:
        return None

    async def export(self, ctx: Context, payload: bytes, count: int) -> None:
        client = await self._connect()
        try:
            await client.publish(self.topic(ctx), payload, qos=self.qos, retain=self.retain, timeout=self.timeout_s)
        except (TimeoutError, aiomqtt.MqttError) as err:
            await self._drop()
            raise ExportFailed(f"publish to {self.host}:{self.port} failed: {err}") from err

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    async def close(self) -> None:
        await self._drop()


def _refused(err: aiomqtt.MqttError) -> bool:
    """The broker refused the connection itself (bad credentials, not authorised): retrying will not help."""
    text = str(err).lower()
    return "not authori" in text or "bad user name or password" in text or "code:5" in text or "code:4" in text


__all__ = ["MqttExporter"]
