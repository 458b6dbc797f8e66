"""The published catalogue of topics and payloads, generated from the event models.

`asyncapi_document()` builds an AsyncAPI 3.0 document: one channel per topic
(with its key and DLQ), one message per event type (CloudEvents headers +
the pydantic model's JSON schema in the AsyncAPI schema format).
`event_json_schemas()` gives one standalone JSON Schema (2020-12) per event
type, for schema registries; `write_all()` writes both beside each other.
`breaking_changes(old, new)` compares two AsyncAPI documents and lists what
would break a consumer within a major version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .events import registry
from .events.base import Event, Topic
from .events.envelope import (
    H_CAUSATION,
    H_CORRELATION,
    H_ID,
    H_SOURCE,
    H_SPEC,
    H_SUBJECT,
    H_TIME,
    H_TYPE,
)
from .tracing import CE_TRACEPARENT, CE_TRACESTATE, TRACEPARENT, TRACESTATE

CE_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": [H_ID, H_TYPE, H_SOURCE, H_TIME, H_SPEC, H_SUBJECT],
    "properties": {
        H_SPEC: {"type": "string", "const": "1.0"},
        H_ID: {"type": "string", "description": "unique event id; consumers deduplicate on it"},
        H_TYPE: {
            "type": "string",
            "description": "event type, e.g. delego.catalog.OfferPublished.v1",
        },
        H_SOURCE: {"type": "string", "description": "producing service, e.g. /delego/catalog"},
        H_TIME: {"type": "string", "format": "date-time", "description": "UTC instant"},
        H_SUBJECT: {"type": "string", "description": "aggregate id, equal to the Kafka key"},
        H_CORRELATION: {"type": "string", "description": "id of the first event of the chain"},
        H_CAUSATION: {
            "type": "string",
            "description": "id of the event whose handling caused this one",
        },
        "content-type": {"type": "string", "const": "application/json"},
        CE_TRACEPARENT: {
            "type": "string",
            "description": "W3C trace context of the span that produced the record (CloudEvents "
            "distributed-tracing extension, `traceparent` attribute); optional, only when the "
            "producer traces",
        },
        CE_TRACESTATE: {
            "type": "string",
            "description": "W3C tracestate (CloudEvents distributed-tracing extension); optional",
        },
        TRACEPARENT: {
            "type": "string",
            "description": f"the same value as {CE_TRACEPARENT}, under the name OpenTelemetry's "
            "Kafka instrumentations read; optional",
        },
        TRACESTATE: {"type": "string", "description": f"the same value as {CE_TRACESTATE}"},
    },
}


def _message_name(cls: type[Event]) -> str:
    return cls.__name__


def _channel_id(topic: Topic) -> str:
    return topic.name.replace(".", "_")


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _asyncapi_schema(schema: Any) -> Any:
    """Pydantic writes OpenAPI's discriminator object ({propertyName, mapping}); the
    AsyncAPI schema format's `discriminator` is the property name alone (the mapping is
    redundant: each variant pins that property with a `const`)."""
    if isinstance(schema, list):
        return [_asyncapi_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _asyncapi_schema(v) for k, v in schema.items()}
    disc = schema.get("discriminator")
    if isinstance(disc, dict) and "propertyName" in disc and "oneOf" in schema:
        out["discriminator"] = disc["propertyName"]
    return out


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for topic in registry.topics():
        cid = _channel_id(topic)
        refs = {}
        for cls in registry.for_topic(topic):
            name = _message_name(cls)
            schema = cls.model_json_schema(
                ref_template="#/components/schemas/{model}", mode="serialization"
            )
            for def_name, definition in schema.pop("$defs", {}).items():
                schemas[def_name] = _asyncapi_schema(definition)
            schemas[name] = _asyncapi_schema(schema)
            messages[name] = {
                "name": name,
                "title": cls.event_type,
                "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
                "payload": {"$ref": f"#/components/schemas/{name}"},
                "bindings": {"kafka": {"key": {"type": "string", "description": topic.key_doc}}},
                "x-ce-type": cls.event_type,
            }
            refs[name] = {"$ref": f"#/components/messages/{name}"}
        channels[cid] = {
            "address": topic.name,
            "description": f"{topic.service} {topic.aggregate} events, keyed by {topic.key_doc}; "
            f"parked records on {topic.dlq}",
            "messages": refs,
            "bindings": {"kafka": {"topic": topic.name, "partitions": topic.partitions}},
        }
        operations[f"publish_{cid}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"{topic.service} publishes",
        }
    schemas["CloudEventsHeaders"] = CE_HEADERS
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Delego platform events",
            "version": "1.0.0",
            "description": "Every topic and event of Delego. CloudEvents 1.0 in Kafka binary "
            "mode; body = JSON of the event; money = decimal string + ISO 4217; instants UTC.",
        },
        "defaultContentType": "application/json",
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {
            "messages": dict(sorted(messages.items())),
            "schemas": dict(sorted(schemas.items())),
        },
    }


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """`ce_type` -> the standalone JSON Schema of that event's body (what a schema
    registry stores per subject; `$defs` inline, so each file stands alone)."""
    out: dict[str, dict[str, Any]] = {}
    for topic in registry.topics():
        for cls in registry.for_topic(topic):
            schema = cls.model_json_schema(mode="serialization")
            out[cls.event_type] = {
                "$schema": JSON_SCHEMA_DIALECT,
                "title": cls.event_type,
                "description": f"Body of {cls.event_type} on {topic.name} (CloudEvents "
                f"data, content-type application/json). {schema.get('description', '')}".strip(),
                **{k: v for k, v in schema.items() if k not in ("title", "description")},
            }
    return dict(sorted(out.items()))


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def schemas_dir(asyncapi_path: Path) -> Path:
    """The per-event JSON Schemas live in `schemas/` beside the AsyncAPI document."""
    return asyncapi_path.parent / "schemas"


def generated_files(asyncapi_path: Path) -> dict[Path, str]:
    """Every file `write_all` writes, with its content."""
    files = {asyncapi_path: render(asyncapi_document())}
    for ce_type, schema in event_json_schemas().items():
        files[schemas_dir(asyncapi_path) / f"{ce_type}.json"] = render(schema)
    return files


def out_of_date(asyncapi_path: Path) -> list[str]:
    """Generated files missing or different from the code, and stale schema files."""
    files = generated_files(asyncapi_path)
    problems = [
        f"{path}: out of date"
        for path, text in files.items()
        if not path.exists() or path.read_text() != text
    ]
    folder = schemas_dir(asyncapi_path)
    existing = set(folder.glob("*.json")) if folder.is_dir() else set()
    problems += [f"{path}: no such event type" for path in sorted(existing - set(files))]
    return problems


def write_all(asyncapi_path: Path) -> list[Path]:
    """Write the AsyncAPI document and one JSON Schema per event type; drop stale ones."""
    files = generated_files(asyncapi_path)
    folder = schemas_dir(asyncapi_path)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in set(folder.glob("*.json")) - set(files):
        stale.unlink()
    for path, text in files.items():
        path.write_text(text)
    return sorted(files)


# --- compatibility -----------------------------------------------------------


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 20:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        seen += 1
    return schema


def _types(schema: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    schema = _resolve(schema, schemas)
    if "anyOf" in schema or "oneOf" in schema:
        out: set[str] = set()
        for s in schema.get("anyOf", schema.get("oneOf", [])):
            out |= _types(s, schemas)
        return out
    if "type" in schema:
        t = schema["type"]
        return set(t) if isinstance(t, list) else {t}
    if "const" in schema:
        return {f"const:{schema['const']}"}
    if "enum" in schema:
        return {f"enum:{v}" for v in schema["enum"]}
    return {"any"}


def _discriminator(schema: dict[str, Any]) -> str | None:
    """The discriminating property, in either form (AsyncAPI string or pydantic object)."""
    disc = schema.get("discriminator")
    if isinstance(disc, dict):
        name = disc.get("propertyName")
        return name if isinstance(name, str) else None
    return disc if isinstance(disc, str) else None


def _variants(schema: dict[str, Any], schemas: dict[str, Any], prop: str) -> dict[str, Any]:
    """Discriminator value -> the variant of a `oneOf` that pins it with a `const`."""
    out: dict[str, Any] = {}
    for variant in schema.get("oneOf", []):
        const = _resolve(variant, schemas).get("properties", {}).get(prop, {}).get("const")
        if const is not None:
            out[str(const)] = variant
    return out


def _compare(
    path: str,
    old: dict[str, Any],
    new: dict[str, Any],
    old_s: dict[str, Any],
    new_s: dict[str, Any],
    out: list[str],
    depth: int = 0,
) -> None:
    if depth > 12:
        return
    old, new = _resolve(old, old_s), _resolve(new, new_s)
    ot, nt = _types(old, old_s), _types(new, new_s)
    if "any" not in nt and not ot <= nt:
        out.append(f"{path}: type changed from {sorted(ot)} to {sorted(nt)}")
        return
    prop = _discriminator(old)
    if prop is not None:
        # the discriminator's spelling (object or string) is not on the wire; its
        # property and each variant a consumer knows are
        if _discriminator(new) != prop:
            out.append(f"{path}: discriminator changed from {prop} to {_discriminator(new)}")
        else:
            new_variants = _variants(new, new_s, prop)
            for value, variant in _variants(old, old_s, prop).items():
                where = f"{path}[{prop}={value}]"
                if value not in new_variants:
                    out.append(f"{where}: variant removed")
                else:
                    _compare(where, variant, new_variants[value], old_s, new_s, out, depth + 1)
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for field in old_props:
        if field not in new_props:
            out.append(f"{path}.{field}: removed")
    for field in set(new.get("required", [])) - set(old.get("required", [])):
        if field not in old.get("required", []) and field in old_props:
            out.append(f"{path}.{field}: became required")
        elif field not in old_props:
            out.append(f"{path}.{field}: new required field")
    for field, o in old_props.items():
        if field in new_props:
            _compare(f"{path}.{field}", o, new_props[field], old_s, new_s, out, depth + 1)
    if "items" in old and "items" in new:
        _compare(f"{path}[]", old["items"], new["items"], old_s, new_s, out, depth + 1)


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What a consumer built against `old` would trip over in `new` (same major)."""
    out: list[str] = []
    old_s, new_s = old["components"]["schemas"], new["components"]["schemas"]
    for cid, ch in old["channels"].items():
        if cid not in new["channels"]:
            out.append(f"topic {ch['address']}: removed")
            continue
        for msg in ch["messages"]:
            if msg not in new["channels"][cid]["messages"]:
                out.append(f"{ch['address']} {msg}: event type removed")
    for name, msg in old["components"]["messages"].items():
        if name not in new["components"]["messages"]:
            continue
        new_msg = new["components"]["messages"][name]
        if msg.get("x-ce-type") != new_msg.get("x-ce-type"):
            out.append(
                f"{name}: ce_type changed from {msg.get('x-ce-type')} to {new_msg.get('x-ce-type')}"
            )
        _compare(name, old_s.get(name, {}), new_s.get(name, {}), old_s, new_s, out)
    return out
