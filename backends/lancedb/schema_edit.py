"""Edit a Lance schema keeping its field ids: drop fields, rename fields, replace the schema metadata.

``LanceOperation.Project`` commits a new schema for the same data files
(drops and renames are metadata, no data is rewritten), and it needs a
``LanceSchema`` whose field ids are the dataset's own. ``LanceSchema.from_pyarrow``
numbers fields depth first from 0, which is only right for a table that never
dropped a column, and ``LanceSchema`` has no rename. Its pickle form, however,
is public and stable: ``(metadata JSON, *field protobufs)`` (``lance.file.Field``:
2 = name, 3 = id, 4 = parent id). This module edits that form: a field is
renamed by rewriting its name, dropped with its children, and the schema-level
metadata (where migrator's stamp lives) is replaced, all in the one schema the
``Project`` commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FieldProto", "edit_schema"]

_NAME, _ID, _PARENT = 2, 3, 4
_VARINT, _LEN, _I64, _I32 = 0, 2, 1, 5


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _encode(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _entries(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """``(field number, raw entry, payload)`` for each entry of a protobuf message."""
    at = 0
    while at < len(data):
        key, body = _varint(data, at)
        wire = key & 7
        if wire == _VARINT:
            end = _varint(data, body)[1]
            payload = data[body:end]
        elif wire == _LEN:
            size, start = _varint(data, body)
            end = start + size
            payload = data[start:end]
        elif wire == _I64:
            end = body + 8
            payload = data[body:end]
        elif wire == _I32:
            end = body + 4
            payload = data[body:end]
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} in a Lance field")
        yield key >> 3, data[at:end], payload
        at = end


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True)
class FieldProto:
    """One field of a Lance schema in its protobuf form."""

    raw: bytes

    @property
    def name(self) -> str:
        return next((p.decode("utf-8") for n, _, p in _entries(self.raw) if n == _NAME), "")

    @property
    def id(self) -> int:
        return next((_signed(_varint(p, 0)[0]) for n, _, p in _entries(self.raw) if n == _ID), 0)

    @property
    def parent_id(self) -> int:
        return next((_signed(_varint(p, 0)[0]) for n, _, p in _entries(self.raw) if n == _PARENT), 0)

    def renamed(self, name: str) -> FieldProto:
        encoded = name.encode("utf-8")
        entry = _encode((_NAME << 3) | _LEN) + _encode(len(encoded)) + encoded
        parts = [entry if n == _NAME else raw for n, raw, _ in _entries(self.raw)]
        return FieldProto(b"".join(parts))


def edit_schema(lance_schema: Any, *, drop: Sequence[str] = (), rename: Mapping[str, str] | None = None,
                metadata: Mapping[str, str] | None = None, order: Sequence[str] | None = None) -> Any:
    """A copy of ``lance_schema`` (a ``lance.schema.LanceSchema``) with top-level fields dropped and renamed.

    ``metadata`` (when given) replaces the schema-level metadata. ``order`` (when given) lists the top-level
    fields, by their names after the renames, in the order they take (each followed by its children; fields it
    does not name keep their place after those it names). Field ids are kept; children of a dropped field go with
    it. Raises ``KeyError`` naming a field to drop or rename that is not there.
    """
    build, (meta_json, *raw_fields) = lance_schema.__reduce__()
    fields = [FieldProto(bytes(raw)) for raw in raw_fields]
    top = {f.name: f for f in fields if f.parent_id == -1}
    renames = dict(rename or {})
    for name in [*drop, *renames]:
        if name not in top:
            raise KeyError(name)
    gone = {top[name].id for name in drop}
    changed = True
    while changed:  # children (and their children) of dropped fields
        changed = False
        for f in fields:
            if f.id not in gone and f.parent_id in gone:
                gone.add(f.id)
                changed = True
    kept: list[FieldProto] = []
    for f in fields:
        if f.id in gone:
            continue
        if f.parent_id == -1 and f.name in renames:
            f = f.renamed(renames[f.name])
        kept.append(f)
    if order is not None:
        kept = _ordered(kept, order)
    # Lance's JSON form keeps metadata values as byte lists
    meta_out = meta_json if metadata is None else json.dumps({k: list(v.encode("utf-8")) for k, v in metadata.items()})
    return build(meta_out, *[f.raw for f in kept])


def _ordered(fields: list[FieldProto], order: Sequence[str]) -> list[FieldProto]:
    """``fields`` with the top-level ones in ``order`` (then the others), each followed by its descendants."""
    children: dict[int, list[FieldProto]] = {}
    for f in fields:
        children.setdefault(f.parent_id, []).append(f)
    top = children.get(-1, [])
    rank = {name: i for i, name in enumerate(order)}
    top = sorted(top, key=lambda f: rank.get(f.name, len(rank)))  # stable: unnamed ones keep their order

    out: list[FieldProto] = []

    def visit(f: FieldProto) -> None:
        out.append(f)
        for child in children.get(f.id, []):
            visit(child)

    for f in top:
        visit(f)
    return out
