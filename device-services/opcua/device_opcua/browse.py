"""Discovery: browse an OPC UA server from a start node into an EdgeX device profile, and find the endpoints'
servers for provision watchers.

`python -m device_opcua.browse opc.tcp://host:4840/path [--start ns=2;s=Line1] [--profile out.yaml]` (also
`edgeplane opcua browse ...`) writes the profile YAML: one resource per variable, with the EdgeX value type of its
OPC UA data type and R/RW from its access level, named by its browse name (prefixed by its parents' names where
two would clash).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from asyncua import Client, ua
from asyncua.common.ua_utils import data_type_to_variant_type

from device_opcua.attributes import parse_protocols
from device_opcua.convert import edgex_type
from device_opcua.errors import cause
from device_opcua.nodeids import NodeIdError, parse_node_id
from edgeplane_common.errors import ContractInvalid, ServiceUnavailable
from edgeplane_common.models import ValueType
from edgeplane_sdk.driver import DiscoveredDevice

OBJECTS_FOLDER = "i=85"
_CLASSES = ua.NodeClass.Object | ua.NodeClass.Variable


@dataclass(frozen=True, slots=True)
class BrowsedVariable:
    node_id: str
    path: tuple[str, ...]
    value_type: ValueType
    readable: bool
    writable: bool
    description: str | None = None


async def _children(client: Client, node_id: ua.NodeId) -> list[Any]:
    node = client.get_node(node_id)
    refs = await node.get_references(
        refs=ua.ObjectIds.HierarchicalReferences, direction=ua.BrowseDirection.Forward, nodeclassmask=_CLASSES
    )
    return list(refs)


async def browse_variables(
    client: Client, start: str = OBJECTS_FOLDER, *, max_depth: int = 8, limit: int = 10_000
) -> list[BrowsedVariable]:
    """Variables under `start` (breadth first), skipping the standard Server object and properties."""
    try:
        start_id = ua.NodeId.from_string(str(parse_node_id(start)))
    except NodeIdError as err:
        raise ContractInvalid(f"start node {err}") from None
    found: list[BrowsedVariable] = []
    queue: deque[tuple[ua.NodeId, tuple[str, ...], int]] = deque([(start_id, (), 0)])
    seen = {start_id.to_string()}
    while queue and len(found) < limit:
        node_id, path, depth = queue.popleft()
        for ref in await _children(client, node_id):
            child = ref.NodeId
            key = child.to_string()
            if key in seen or (child.NamespaceIndex == 0 and child.Identifier == 2253):  # the Server object
                continue
            seen.add(key)
            if ref.ReferenceTypeId == ua.NodeId(ua.ObjectIds.HasProperty):
                continue
            name = ref.BrowseName.Name
            if ref.NodeClass == ua.NodeClass.Variable:
                variable = await _variable(client, child, (*path, name))
                if variable is not None:
                    found.append(variable)
            if depth + 1 < max_depth:
                queue.append((child, (*path, name), depth + 1))
    return found


async def _variable(client: Client, node_id: ua.NodeId, path: tuple[str, ...]) -> BrowsedVariable | None:
    params = ua.ReadParameters()
    params.NodesToRead = [
        ua.ReadValueId(NodeId=node_id, AttributeId=attr)
        for attr in (
            ua.AttributeIds.DataType,
            ua.AttributeIds.ValueRank,
            ua.AttributeIds.AccessLevel,
            ua.AttributeIds.Description,
        )
    ]
    dtype, rank, access, description = await client.uaclient.read(params)
    if not (dtype.StatusCode.is_good() and rank.StatusCode.is_good()):
        return None
    dt_id = dtype.Value.Value
    if dt_id.NamespaceIndex == 0 and isinstance(dt_id.Identifier, int) and 1 <= dt_id.Identifier <= 25:
        variant = ua.VariantType(dt_id.Identifier)
    else:
        try:
            variant = await data_type_to_variant_type(client.get_node(dt_id))
        except Exception:
            variant = ua.VariantType.ExtensionObject
    level = int(access.Value.Value or 0) if access.StatusCode.is_good() else 1
    text = description.Value.Value.Text if description.StatusCode.is_good() and description.Value.Value else None
    return BrowsedVariable(
        node_id=node_id.to_string(),
        path=path,
        value_type=edgex_type(variant, int(rank.Value.Value) >= 1),
        readable=bool(level & 1),
        writable=bool(level & 2),
        description=text if text and text != path[-1] else None,
    )


_NAME_BAD = re.compile(r"[^A-Za-z0-9_.~:;=()-]+")


def _names(variables: list[BrowsedVariable]) -> list[str]:
    """Leaf browse names, prefixed by parents' names where two variables would share one."""
    counts: dict[int, Counter[str]] = {}  # per suffix length: how many variables' paths end that way

    def suffix(v: BrowsedVariable, depth: int) -> str:
        return "_".join(v.path[-depth:])

    def clashes(candidate: str, depth: int) -> bool:
        counted = counts.get(depth)
        if counted is None:
            counted = counts[depth] = Counter(suffix(w, depth) for w in variables)
        return counted[candidate] > 1

    names = []
    for v in variables:
        depth = 1
        candidate = suffix(v, depth)
        while depth < len(v.path) and clashes(candidate, depth):
            depth += 1
            candidate = suffix(v, depth)
        names.append(_NAME_BAD.sub("_", candidate) or "Variable")
    return names


def profile_for(variables: list[BrowsedVariable], name: str, *, endpoint: str, start: str) -> dict[str, Any]:
    """An EdgeX device profile (YAML document) of browsed variables."""
    resources = []
    for resource_name, v in zip(_names(variables), variables, strict=True):
        writable = v.writable and v.value_type not in (ValueType.BINARY, ValueType.OBJECT, ValueType.OBJECT_ARRAY)
        read_write = "RW" if v.readable and writable else ("W" if writable else "R")
        resource: dict[str, Any] = {"name": resource_name}
        if v.description:
            resource["description"] = v.description
        resource["attributes"] = {"nodeId": v.node_id}
        properties: dict[str, Any] = {"valueType": v.value_type.value, "readWrite": read_write}
        if v.value_type is ValueType.BINARY:
            properties["mediaType"] = "application/octet-stream"
        resource["properties"] = properties
        resources.append(resource)
    return {
        "name": name,
        "manufacturer": "",
        "model": "",
        "labels": ["opcua", "discovered"],
        "description": f"Browsed from {endpoint} starting at {start}",
        "deviceResources": resources,
    }


async def browse_endpoint(
    endpoint: str, *, start: str = OBJECTS_FOLDER, name: str | None = None, timeout: float = 5.0, max_depth: int = 8
) -> dict[str, Any]:
    """Connect (security policy None, anonymous), browse and return the profile."""
    parse_protocols({"opcua": {"Endpoint": endpoint}}, device="browse")
    client = Client(endpoint, timeout=timeout)
    try:
        await asyncio.wait_for(client.connect(), timeout * 2)
    except Exception as err:
        raise ServiceUnavailable(f"cannot browse {endpoint}: {cause(err, timeout)}") from err
    try:
        variables = await browse_variables(client, start, max_depth=max_depth)
        if name is None:
            server = await client.nodes.server.get_child("0:ServerStatus")
            build = await server.get_child("0:BuildInfo")
            product = await (await build.get_child("0:ProductName")).read_value()
            name = _NAME_BAD.sub("-", str(product or "OPCUA-Server")).strip("-") or "OPCUA-Server"
        return profile_for(variables, name, endpoint=endpoint, start=start)
    finally:
        await client.disconnect()


async def discover_endpoints(endpoints: list[str], timeout: float = 5.0) -> list[DiscoveredDevice]:
    """One discovered device per reachable endpoint: its protocol `opcua` has `Endpoint`, `ApplicationUri` and
    `ApplicationName`, which provision watchers match with their identifiers."""
    found = []
    for endpoint in endpoints:
        client = Client(endpoint, timeout=timeout)
        try:
            descriptions = await asyncio.wait_for(client.connect_and_get_server_endpoints(), timeout * 2)
        except Exception:
            continue
        if not descriptions:
            continue
        server = descriptions[0].Server
        app_name = server.ApplicationName.Text or server.ApplicationUri or endpoint
        name = _NAME_BAD.sub("-", f"{app_name}").strip("-")
        host = re.sub(r"[^A-Za-z0-9]+", "-", endpoint.removeprefix("opc.tcp://")).strip("-")
        found.append(
            DiscoveredDevice(
                name=f"{name}-{host}",
                protocols={
                    "opcua": {
                        "Endpoint": endpoint,
                        "ApplicationUri": server.ApplicationUri or "",
                        "ApplicationName": app_name,
                    }
                },
                description=f"OPC UA server {app_name} at {endpoint}",
                labels=["opcua", "discovered"],
            )
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="edgeplane opcua browse", description="Browse an OPC UA server into an EdgeX device profile (YAML)."
    )
    parser.add_argument("endpoint", help="opc.tcp://host:port[/path]")
    parser.add_argument("--start", default=OBJECTS_FOLDER, help="node to browse from (default i=85, Objects)")
    parser.add_argument("--profile", help="write the profile here (default: standard output)")
    parser.add_argument("--name", help="profile name (default: the server's product name)")
    parser.add_argument("--depth", type=int, default=8, help="levels to descend (default 8)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request (default 5)")
    args = parser.parse_args(argv)
    try:
        profile = asyncio.run(
            browse_endpoint(args.endpoint, start=args.start, name=args.name, timeout=args.timeout, max_depth=args.depth)
        )
    except (ContractInvalid, ServiceUnavailable) as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 1
    text = yaml.safe_dump(profile, sort_keys=False, width=120)
    if args.profile:
        Path(args.profile).write_text(text)
        print(f"{len(profile['deviceResources'])} resources written to {args.profile}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
