"""EventStore on Redis, laid out for write throughput (see docs/adr/0002-core-data-redis-layout.md).

Keys (all under `cd:`; D = device, S = source, R = resource, NUL-separated inside a key):
  cd:ev               hash  event id -> the event's EdgeX JSON (readings included): the only copy of the data
  cd:ev:all           zset  event members, every event
  cd:ev:src:D\\0S      zset  event members of device D, source S
  cd:rd:all           zset  reading members, every reading
  cd:rd:dr:D\\0R       zset  reading members of device D, resource R, each followed by
                            0x1F valueType 0x1F numeric value 0x1F profile (what the aggregates read)
  cd:sources          set   D\\0S of every cd:ev:src:* (device queries and retention walk them)
  cd:pairs            set   D\\0R of every cd:rd:dr:* (device/resource queries and aggregates walk them)

Each event costs three index entries and each reading two. A device's events are the merge of its sources'
indexes, a device's (or a resource's) readings the merge of its device+resource indexes: paging merges the
newest offset+limit of each, counting sums their sizes. That keeps Redis' work per reading (the write
bottleneck, measured) at two sorted-set inserts instead of four.

Every sorted-set score is 0; members sort by their bytes (ZRANGE BYLEX): an event member is the origin as 8
big-endian bytes (offset by 2^63, so negative origins sort too) followed by the event id; a reading member
is origin, its position in the event (2 bytes) and the event id. Origins stay exact to the nanosecond
(a double score would round them to ~256 ns), time ranges are lex ranges, counts are ZCARD/ZLEXCOUNT: no
counters to keep in step, and re-adding a member is a no-op, so a redelivered event cannot count twice.

A batch of events is written with one existence check (a tiny Lua script, one round trip) and one
MULTI/EXEC whose commands carry every member of the batch per key; that MULTI is packed as RESP here,
because redis-py's generic packing costs more than everything else in the write path.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Awaitable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core_data.application.ports import AggregateGroup, EventQuery, ReadingQuery
from edgeplane_common.edgex.events import EventRecord
from edgeplane_common.errors import ServiceUnavailable

log = logging.getLogger(__name__)

EV = b"cd:ev"
EV_ALL = b"cd:ev:all"
RD_ALL = b"cd:rd:all"
SOURCES = b"cd:sources"
PAIRS = b"cd:pairs"
SEP = b"\x00"
VSEP = b"\x1f"
_OFFSET = 1 << 63
_MIN, _MAX = -(1 << 63), (1 << 63) - 1
CHUNK = 500
"""Events removed per MULTI, members read per ZRANGE when aggregating or merging."""
WRITE_ATTEMPTS = 3

# A present id answers 1: the batch skips it. One round trip for the whole batch.
_EXISTS_LUA = """
local out = {}
for i, id in ipairs(ARGV) do out[i] = redis.call('HEXISTS', KEYS[1], id) end
return out
"""
_EXISTS_SHA = hashlib.sha1(_EXISTS_LUA.encode()).hexdigest().encode()
# ARGV: (zset key, set key, set member) triples. Drops a set member once its index is gone (atomically, so a
# concurrent add of the same pair cannot lose its entry).
_FORGET_EMPTY_LUA = """
for i = 1, #ARGV, 3 do
  if redis.call('EXISTS', ARGV[i]) == 0 then redis.call('SREM', ARGV[i + 1], ARGV[i + 2]) end
end
return 0
"""


def ev_src(device: bytes, source: bytes) -> bytes:
    return b"cd:ev:src:" + device + SEP + source


def rd_dr(pair: bytes) -> bytes:
    return b"cd:rd:dr:" + pair


def o8(origin: int) -> bytes:
    return (min(max(origin, _MIN), _MAX) + _OFFSET).to_bytes(8, "big")


def reading_member(origin: int, index: int, event_id: bytes) -> bytes:
    return o8(origin) + index.to_bytes(2, "big") + event_id


def lex_range(start: int | None, end: int | None) -> tuple[bytes, bytes]:
    """(min, max) of ZRANGE BYLEX for start ≤ origin ≤ end (inclusive, nanoseconds)."""
    lo = b"-" if start is None or start <= _MIN else b"[" + o8(start)
    hi = b"+" if end is None or end >= _MAX else b"(" + o8(end + 1)
    return lo, hi


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


_ZMEMBER = b"$1\r\n0\r\n$%d\r\n%b\r\n"
"""Score 0 and a member, as two RESP bulk strings (format with the member's length and the member)."""
_INDEX = [i.to_bytes(2, "big") for i in range(256)]


class _Resp:
    """Commands packed as RESP, ready for one socket write."""

    __slots__ = ("count", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.count = 0

    def command(self, *args: bytes) -> None:
        self.parts.append(b"*%d\r\n%b" % (len(args), b"".join(_bulk(a) for a in args)))
        self.count += 1

    def keyed(self, name: bytes, key: bytes, encoded: list[bytes], args_each: int) -> None:
        """`name key <encoded...>`, where each encoded chunk holds `args_each` bulk strings."""
        self.parts.append(b"*%d\r\n%b%b" % (2 + args_each * len(encoded), _bulk(name), _bulk(key)))
        self.parts.extend(encoded)
        self.count += 1


_Command = tuple[bytes, bytes, list[bytes], int]


class RedisEventStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.r = client
        self._forget_empty = client.register_script(_FORGET_EMPTY_LUA)

    # -- writes ----------------------------------------------------------------------------------------
    async def add(self, events: Sequence[EventRecord]) -> list[bool]:
        if not events:
            return []
        first: dict[str, EventRecord] = {}
        for event in events:
            first.setdefault(event.id, event)
        ids = list(first)
        present = await self._present(ids)
        new = [first[i] for i, flag in zip(ids, present, strict=True) if not flag]
        if new:
            await self._execute(self._pack_add(new))
        stored = {e.id for e in new}
        out = []
        for event in events:
            # Only the first occurrence of a new id reports True.
            out.append(event.id in stored)
            stored.discard(event.id)
        return out

    @staticmethod
    def _group_add(events: list[EventRecord]) -> list[_Command]:
        """The writes of a batch, one command per key: (name, key, RESP-encoded arguments, arguments each)."""
        # The hot path: one pass, str keys (encoded once per batch), members formatted straight as RESP.
        hset: list[bytes] = []
        ev_all: list[bytes] = []
        by_src: dict[tuple[str, str], list[bytes]] = {}
        rd_all: list[bytes] = []
        by_pair: dict[tuple[str, str], list[bytes]] = {}
        details: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        zm, offset, idx = _ZMEMBER, _OFFSET, _INDEX
        for event in events:
            eid = event.id.encode()
            device = event.device
            hset.append(b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(eid), eid, len(event.blob), event.blob))
            em = (event.origin + offset).to_bytes(8, "big") + eid
            member = zm % (len(em), em)
            ev_all.append(member)
            by_src.setdefault((device, event.source), []).append(member)
            for index, reading in enumerate(event.readings):
                position = idx[index] if index < 256 else index.to_bytes(2, "big")
                rm = (reading.origin + offset).to_bytes(8, "big") + position + eid
                rd_all.append(zm % (len(rm), rm))
                detail = details.get((reading.value_type, reading.profile))
                if detail is None:
                    detail = details[(reading.value_type, reading.profile)] = (
                        VSEP + reading.value_type.encode() + VSEP,
                        VSEP + reading.profile.encode(),
                    )
                dm = rm + detail[0] + (reading.value.encode() if reading.value is not None else b"") + detail[1]
                by_pair.setdefault((device, reading.resource), []).append(zm % (len(dm), dm))
        sources = [d.encode() + SEP + s.encode() for d, s in by_src]
        pairs = [d.encode() + SEP + r.encode() for d, r in by_pair]
        commands: list[_Command] = [(b"HSET", EV, hset, 2), (b"ZADD", EV_ALL, ev_all, 2)]
        commands += [(b"ZADD", b"cd:ev:src:" + k, m, 2) for k, m in zip(sources, by_src.values(), strict=True)]
        commands.append((b"ZADD", RD_ALL, rd_all, 2))
        commands += [(b"ZADD", rd_dr(k), m, 2) for k, m in zip(pairs, by_pair.values(), strict=True)]
        commands.append((b"SADD", SOURCES, [_bulk(k) for k in sources], 1))
        commands.append((b"SADD", PAIRS, [_bulk(k) for k in pairs], 1))
        return commands

    @classmethod
    def _pack_add(cls, events: list[EventRecord]) -> _Resp:
        resp = _Resp()
        resp.command(b"MULTI")
        for name, key, encoded, each in cls._group_add(events):
            resp.keyed(name, key, encoded, each)
        resp.command(b"EXEC")
        return resp

    async def _execute(self, resp: _Resp) -> list[Any]:
        """Send a MULTI ... EXEC packed by _Resp; EXEC's replies."""
        result = await self._send(resp.parts, resp.count)
        if not isinstance(result, list):
            raise ServiceUnavailable(f"event store transaction was not executed: {result!r}")
        errors = [r for r in result if isinstance(r, Exception)]
        if errors:
            raise ServiceUnavailable(f"event store refused a write: {errors[0]}")
        return result

    async def _present(self, ids: list[str]) -> list[int]:
        """1 for each id already stored, else 0 (the existence script, packed here: it runs per batch)."""
        args = [_bulk(i.encode()) for i in ids]
        head = b"*%d\r\n%b%b%b%b" % (4 + len(args), _bulk(b"EVALSHA"), _bulk(_EXISTS_SHA), _bulk(b"1"), _bulk(EV))
        try:
            present: list[int] = await self._send([head, *args], 1)
        except NoScriptError:
            await self._call(self.r.script_load(_EXISTS_LUA))
            present = await self._send([head, *args], 1)
        return present

    async def _send(self, parts: list[bytes], replies: int) -> Any:
        """Write commands packed as RESP on one pooled connection, read their `replies`; the last one.

        Every command sent this way is idempotent (HSET/ZADD/SADD of the same values, HDEL/ZREM/SREM, the
        existence check), so a connection lost mid-way is retried as a whole. Any other failure discards the
        connection: it may hold unread replies, and must never go back to the pool (the CVE-2023-28859
        class of bugs). An error reply to a single command (NOSCRIPT) leaves the connection in step."""
        pool = self.r.connection_pool
        delay = 0.1
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            except RedisError as err:
                raise ServiceUnavailable(f"event store unavailable: {err}") from err
            try:
                await conn.send_packed_command(parts)
                # timeout=inf: no per-reply timer (a MULTI answers one QUEUED per command); the socket's
                # own timeout and the pool's health checks still apply.
                for _ in range(replies - 1):
                    await conn.read_response(timeout=math.inf)
                result = await conn.read_response(timeout=math.inf)
            except NoScriptError:
                if replies != 1:
                    await conn.disconnect(nowait=True)
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as err:
                await conn.disconnect(nowait=True)
                if attempt == WRITE_ATTEMPTS:
                    raise ServiceUnavailable(f"event store unavailable: {err}") from err
                await asyncio.sleep(delay)
                delay *= 2
                continue
            except BaseException as err:
                await conn.disconnect(nowait=True)
                if isinstance(err, RedisError):
                    raise ServiceUnavailable(f"event store refused a write: {err}") from err
                raise
            finally:
                await pool.release(conn)
            return result
        raise AssertionError("unreachable")

    # -- events ----------------------------------------------------------------------------------------
    async def get(self, event_id: str) -> dict[str, Any] | None:
        blob = await self._call(self.r.hget(EV, event_id))
        return None if blob is None else _load(blob)

    async def _members_of(self, name: bytes, device: str | None = None) -> list[bytes]:
        """Members of SOURCES or PAIRS (D\\0X), of one device when given, sorted."""
        members: set[bytes] = await self._call(self.r.smembers(name))
        if device is not None:
            prefix = device.encode() + SEP
            members = {m for m in members if m.startswith(prefix)}
        return sorted(members)

    async def _event_keys(self, query: EventQuery) -> list[bytes]:
        if query.device is None:
            return [EV_ALL]
        if query.source is not None:
            return [ev_src(query.device.encode(), query.source.encode())]
        return [b"cd:ev:src:" + src for src in await self._members_of(SOURCES, query.device)]

    async def _members(
        self, key: bytes, start: int | None, end: int | None, offset: int, limit: int | None
    ) -> list[bytes]:
        """Members of one index, newest first, within the origin range, paged."""
        if limit == 0:
            return []
        offset = min(offset, _MAX)
        if start is None and end is None:
            stop = -1 if limit is None else min(offset + limit - 1, _MAX)
            members: list[bytes] = await self._call(self._command("ZRANGE", key, offset, stop, "REV"))
            return members
        lo, hi = lex_range(start, end)
        args: list[Any] = ["ZRANGE", key, hi, lo, "BYLEX", "REV"]
        if offset or limit is not None:
            args += ["LIMIT", offset, -1 if limit is None else limit]
        members = await self._call(self._command(*args))
        return members

    async def _merged(
        self, keys: list[bytes], start: int | None, end: int | None, offset: int, limit: int | None, *, strip: bool
    ) -> list[bytes]:
        """Members of several indexes, newest first, paged: the newest offset+limit of each, merged.
        `strip` cuts device+resource members down to (origin, position, event id)."""
        if len(keys) == 1:
            members = await self._members(keys[0], start, end, offset, limit)
            return [_prefix(m) for m in members] if strip else members
        want = None if limit is None else offset + limit
        merged: list[bytes] = []
        for key in keys:
            part = await self._members(key, start, end, 0, want)
            merged += [_prefix(m) for m in part] if strip else part
        merged.sort(reverse=True)
        return merged[offset:] if want is None else merged[offset:want]

    async def _count(self, keys: list[bytes], start: int | None, end: int | None) -> int:
        if not keys:
            return 0
        async with self.r.pipeline(transaction=False) as p:
            for key in keys:
                if start is None and end is None:
                    p.zcard(key)
                else:
                    p.zlexcount(key, *lex_range(start, end))
            counts = await self._call(p.execute())
        return sum(int(c) for c in counts)

    async def _docs(self, ids: list[bytes]) -> dict[bytes, dict[str, Any]]:
        if not ids:
            return {}
        unique = list(dict.fromkeys(ids))
        blobs = await self._call(self.r.hmget(EV, unique))
        return {i: _load(b) for i, b in zip(unique, blobs, strict=True) if b is not None}

    async def _event_members(self, query: EventQuery) -> list[bytes]:
        keys = await self._event_keys(query)
        return await self._merged(keys, query.start, query.end, query.offset, query.limit, strip=False)

    async def events(self, query: EventQuery) -> list[dict[str, Any]]:
        ids = [m[8:] for m in await self._event_members(query)]
        docs = await self._docs(ids)
        return [docs[i] for i in ids if i in docs]

    async def count_events(self, query: EventQuery) -> int:
        return await self._count(await self._event_keys(query), query.start, query.end)

    # -- readings --------------------------------------------------------------------------------------
    async def _reading_keys(self, query: ReadingQuery) -> tuple[list[bytes], bool]:
        """The indexes holding the query's readings, and whether they are device+resource indexes."""
        if query.device is None and not query.resources:
            return [RD_ALL], False
        resources = {r.encode() for r in query.resources}
        pairs = await self._members_of(PAIRS, query.device)
        if resources:
            pairs = [p for p in pairs if p.partition(SEP)[2] in resources]
        return [rd_dr(p) for p in pairs], True

    async def readings(self, query: ReadingQuery) -> list[dict[str, Any]]:
        keys, strip = await self._reading_keys(query)
        members = await self._merged(keys, query.start, query.end, query.offset, query.limit, strip=strip)
        refs = [(m[10:], int.from_bytes(m[8:10], "big")) for m in members]
        docs = await self._docs([eid for eid, _ in refs])
        out = []
        for eid, index in refs:
            doc = docs.get(eid)
            if doc is not None and index < len(doc["readings"]):
                out.append(doc["readings"][index])
        return out

    async def count_readings(self, query: ReadingQuery) -> int:
        return await self._count((await self._reading_keys(query))[0], query.start, query.end)

    async def aggregate(self, query: ReadingQuery) -> list[AggregateGroup]:
        resources = set(query.resources)
        groups: dict[tuple[str, str, str, str], AggregateGroup] = {}
        lo, hi = lex_range(query.start, query.end)
        for pair in await self._members_of(PAIRS, query.device):
            device_b, _, resource_b = pair.partition(SEP)
            device, resource = device_b.decode(), resource_b.decode()
            if resources and resource not in resources:
                continue
            offset = 0
            while True:
                chunk = await self._call(self._command("ZRANGE", rd_dr(pair), lo, hi, "BYLEX", "LIMIT", offset, CHUNK))
                for member in chunk:
                    value_type, value, profile = member[member.index(VSEP, 10) + 1 :].split(VSEP, 2)
                    key = (device, resource, profile.decode(), value_type.decode())
                    group = groups.get(key)
                    if group is None:
                        group = groups[key] = AggregateGroup(*key)
                    group.add(value)
                if len(chunk) < CHUNK:
                    break
                offset += CHUNK
        return [groups[k] for k in sorted(groups)]

    # -- deletes ---------------------------------------------------------------------------------------
    async def delete_event(self, event_id: str) -> bool:
        return await self._delete_ids([event_id.encode()]) > 0

    async def delete_events(self, query: EventQuery) -> int:
        removed = 0
        remaining = query.limit
        while remaining is None or remaining > 0:
            want = CHUNK if remaining is None else min(CHUNK, remaining)
            # Removed events leave the indexes, so the next chunk starts at the same offset.
            members = await self._event_members(query.model_copy(update={"limit": want}))
            if not members:
                break
            done = await self._delete_ids([m[8:] for m in members])
            if done == 0:
                # Index entries without an event (this store never leaves any): stop rather than loop.
                log.warning("%d index entries of events have no event; not deleted", len(members))
                break
            removed += done
            if remaining is not None:
                remaining -= len(members)
        return removed

    async def _delete_ids(self, ids: list[bytes]) -> int:
        blobs = await self._call(self.r.hmget(EV, ids))
        records = [EventRecord.from_doc(_load(b), b) for b in blobs if b is not None]
        if not records:
            return 0
        resp, forget = self._pack_delete(records)
        result = await self._execute(resp)
        await self._call(self._forget_empty(args=forget))
        return int(result[0])

    @staticmethod
    def _pack_delete(events: list[EventRecord]) -> tuple[_Resp, list[bytes]]:
        zrem: dict[bytes, list[bytes]] = {}
        for event in events:
            eid = event.id.encode()
            dev = event.device.encode() + SEP
            member = _bulk(o8(event.origin) + eid)
            zrem.setdefault(EV_ALL, []).append(member)
            zrem.setdefault(b"cd:ev:src:" + dev + event.source.encode(), []).append(member)
            for index, reading in enumerate(event.readings):
                rm = o8(reading.origin) + index.to_bytes(2, "big") + eid
                zrem.setdefault(RD_ALL, []).append(_bulk(rm))
                value = reading.value.encode() if reading.value is not None else b""
                detail = VSEP + reading.value_type.encode() + VSEP + value + VSEP + reading.profile.encode()
                zrem.setdefault(rd_dr(dev + reading.resource.encode()), []).append(_bulk(rm + detail))
        resp = _Resp()
        resp.command(b"MULTI")
        resp.keyed(b"HDEL", EV, [_bulk(e.id.encode()) for e in events], 1)
        for key, members in zrem.items():
            resp.keyed(b"ZREM", key, members, 1)
        resp.command(b"EXEC")
        forget: list[bytes] = []
        for key in zrem:
            if key.startswith(b"cd:ev:src:"):
                forget += [key, SOURCES, key.removeprefix(b"cd:ev:src:")]
            elif key.startswith(b"cd:rd:dr:"):
                forget += [key, PAIRS, key.removeprefix(b"cd:rd:dr:")]
        return resp, forget

    # -- other -----------------------------------------------------------------------------------------
    async def sources(self) -> list[tuple[str, str]]:
        members = await self._call(self.r.smembers(SOURCES))
        out = []
        for member in members:
            device, _, source = member.partition(SEP)
            out.append((device.decode(), source.decode()))
        return sorted(out)

    def _command(self, *args: Any) -> Awaitable[Any]:
        result: Awaitable[Any] = self.r.execute_command(*args)  # type: ignore[no-untyped-call]
        return result

    async def close(self) -> None:
        await self.r.aclose()

    @staticmethod
    async def _call(awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except RedisError as err:
            raise ServiceUnavailable(f"event store unavailable: {err}") from err


def _prefix(member: bytes) -> bytes:
    """The (origin, position, event id) part of a device+resource index member."""
    return member[: member.index(VSEP, 10)]


def _load(blob: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(blob)
    return doc
