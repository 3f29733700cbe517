"""The OPC UA server simulator: an asyncua server built from a `SimConfig`.

`OpcuaSimulator` is an async context manager for tests; `stop()` and `start()` again restart it on the same
port with a fresh server (as a real server restart: every session and subscription is gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from device_opcua.nodeids import parse_node_id
from device_opcua.sim.config import POLICIES, TYPES, Behaviour, Method, SimConfig, SimObject, Variable, coerce

log = logging.getLogger(__name__)

SERVER_APP_URI = "urn:edgeplane:opcua-sim"


class SimulatorError(RuntimeError):
    pass


class _Users(UserManager):  # type: ignore[misc]
    def __init__(self, users: dict[str, str], anonymous: bool) -> None:
        self.users = users
        self.anonymous = anonymous

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is None:
            return User(role=UserRole.User) if self.anonymous else None
        if self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class OpcuaSimulator:
    def __init__(
        self, config: SimConfig, host: str = "127.0.0.1", port: int = 4840, *, tick_interval: float | None = None
    ) -> None:
        self.config = config
        self.host = host
        self.port = port if port else _free_port(host)
        self.tick_interval = tick_interval or config.tick_interval
        self.server: Server | None = None
        self.nodes: dict[str, Node] = {}  # "Object.Variable" -> node
        self._behaviours: list[tuple[Node, Behaviour, ua.VariantType]] = []
        self._tick_task: asyncio.Task[None] | None = None
        self.certificate: Path | None = None

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}{self.config.path}"

    async def __aenter__(self) -> OpcuaSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self.server is not None:
            return
        server = Server(
            user_manager=_Users({u.username: u.password for u in self.config.users}, self.config.allow_anonymous)
        )
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name(self.config.name)
        await server.set_application_uri(SERVER_APP_URI)
        tokens: list[type] = [ua.UserNameIdentityToken] if self.config.users else []
        if self.config.allow_anonymous:
            tokens.insert(0, ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        await self._security(server)
        for uri in self.config.namespaces:
            await server.register_namespace(uri)
        self.nodes = {}
        self._behaviours = []
        for obj in self.config.objects:
            await self._add_object(server, obj)
        try:
            await server.start()
        except OSError as err:
            await server.stop()
            raise SimulatorError(f"cannot listen on {self.host}:{self.port}: {err}") from err
        self.server = server
        self._tick_task = asyncio.create_task(self._tick(), name="opcua-sim-tick")
        log.info("OPC UA simulator listening on %s (%d variables)", self.url, len(self.nodes))

    async def stop(self) -> None:
        task, self._tick_task = self._tick_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def _security(self, server: Server) -> None:
        sec = self.config.security
        if sec is None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            return
        base = self.config.base_dir or Path.cwd()
        cert = base / (sec.certificate or "opcua-sim-cert.der")
        key = base / (sec.private_key or "opcua-sim-key.pem")
        policies = [POLICIES[p] for p in sec.policies]
        if any(p is not ua.SecurityPolicyType.NoSecurity for p in policies):
            await setup_self_signed_certificate(
                key,
                cert,
                SERVER_APP_URI,
                socket.gethostname(),
                [ExtendedKeyUsageOID.SERVER_AUTH],
                {"organizationName": "edgeplane"},
            )
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
            self.certificate = cert
        server.set_security_policy(policies)

    async def _ns_index(self, server: Server, text: str) -> ua.NodeId:
        parsed = parse_node_id(text)
        index = parsed.namespace_index
        if parsed.namespace_uri is not None:
            index = await server.get_namespace_index(parsed.namespace_uri)
        kind = {
            "i": ua.NodeIdType.Numeric,
            "s": ua.NodeIdType.String,
            "g": ua.NodeIdType.Guid,
            "b": ua.NodeIdType.ByteString,
        }
        return ua.NodeId(parsed.identifier, index, kind[parsed.kind])

    async def _add_object(self, server: Server, obj: SimObject) -> None:
        ns = 2 if self.config.namespaces else 1
        nodeid = await self._ns_index(server, obj.node_id) if obj.node_id else ua.NodeId(obj.name, ns)
        node = await server.nodes.objects.add_object(nodeid, ua.QualifiedName(obj.name, nodeid.NamespaceIndex))
        for var in obj.variables:
            await self._add_variable(server, node, obj, var, ns)
        for method in obj.methods:
            await self._add_method(server, node, obj, method, ns)

    async def _add_variable(self, server: Server, parent: Node, obj: SimObject, var: Variable, ns: int) -> None:
        vt = var.variant_type
        nodeid = await self._ns_index(server, var.node_id) if var.node_id else ua.NodeId(f"{obj.name}.{var.name}", ns)
        initial = var.constant if var.constant is not None else var.value
        behaviour = Behaviour(var) if var.behaviour is not None else None
        if initial is None and behaviour is not None:
            initial = behaviour.next(0.0)
        value: Any
        value = [coerce(v, vt) for v in initial or []] if var.array else coerce(initial, vt)
        node = await parent.add_variable(
            nodeid, ua.QualifiedName(var.name, nodeid.NamespaceIndex), ua.Variant(value, vt, is_array=var.array or None)
        )
        if var.array:
            await node.write_attribute(ua.AttributeIds.ValueRank, ua.DataValue(ua.Variant(1, ua.VariantType.Int32)))
        if var.writable:
            await node.set_writable()
        self.nodes[f"{obj.name}.{var.name}"] = node
        if behaviour is not None:
            self._behaviours.append((node, behaviour, vt))

    async def _add_method(self, server: Server, parent: Node, obj: SimObject, method: Method, ns: int) -> None:
        nodeid = (
            await self._ns_index(server, method.node_id)
            if method.node_id
            else ua.NodeId(f"{obj.name}.{method.name}", ns)
        )
        target = self.nodes.get(f"{obj.name}.{method.target}") if method.target else None
        out_types = [TYPES[a.type] for a in method.outputs]

        async def handler(parent_id: ua.NodeId, *args: ua.Variant) -> list[ua.Variant]:
            values = [a.Value for a in args]
            result: Any
            if method.action == "sum":
                result = sum(values)
            elif method.action == "product":
                result = 1
                for v in values:
                    result *= v
            elif method.action == "concat":
                result = "".join(str(v) for v in values)
            elif method.action == "constant":
                result = method.value
            elif method.action == "set":
                if target is None or not values:
                    raise ua.UaStatusCodeError(ua.StatusCodes.BadInvalidArgument)
                await target.write_value(ua.Variant(values[0], (await target.read_data_type_as_variant_type())))
                result = True
            else:
                result = values[0] if len(values) == 1 else values
            if not out_types:
                return []
            return [ua.Variant(coerce(result, out_types[0]), out_types[0])]

        inputs = [_argument(a.name, a.type, a.array) for a in method.inputs]
        outputs = [_argument(a.name, a.type, a.array) for a in method.outputs]
        await parent.add_method(nodeid, ua.QualifiedName(method.name, nodeid.NamespaceIndex), handler, inputs, outputs)

    async def _tick(self) -> None:
        assert self.server is not None
        server = self.server
        start = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_interval)
            elapsed = time.monotonic() - start
            for node, behaviour, vt in self._behaviours:
                value = behaviour.next(elapsed)
                if value is None:
                    continue
                with contextlib.suppress(Exception):
                    await server.write_attribute_value(node.nodeid, ua.DataValue(ua.Variant(value, vt)))


def _argument(name: str, type_name: str, array: bool) -> ua.Argument:
    vt = TYPES[type_name]
    arg = ua.Argument()
    arg.Name = name
    arg.DataType = ua.NodeId(vt.value)
    arg.ValueRank = 1 if array else -1
    if array:
        arg.ArrayDimensions = [0]
    arg.Description = ua.LocalizedText(name)
    return arg


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
