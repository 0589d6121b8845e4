"""A trace file is untrusted input: bounded reading, strict JSON, the schema, and #meta against the catalogue.

Everything here runs before a trace's values reach the models. A file must be
a regular file no larger than MAX_BYTES (a FIFO or a device is refused before
it is read, so neither blocks nor fills memory); its JSON may nest at most
MAX_DEPTH deep (checked before parsing, so the parser never recurses far);
numbers are integers (no floats, NaN or Infinity) and no object repeats a key.
The document must then match verify/traces/trace_schema.json, and #meta must name a
model of models/catalogue.py with that model's element size, page size, policy
and faults, and a property of the catalogue that applies to it; a model read from
kernel source (`verify run --source`) is named with its file, which must be there
with the SHA-256 the trace records. Each failure
is a TraceError of one line naming the first offending field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from models.catalogue import SOURCE_POLICY, ModelSpec, model_named, policy_model, source_model_named
from models.faults import FAULTS
from models.machine import PAGE_SIZES, PRESETS, USIZE_MAX
from properties.base import KernelTest, Property, Scenario, StepProperty
from properties.binder import INSTANCE, SequenceProperty
from properties.registry import all_properties, applicable
from verify.files import UnreadableFile, read_regular, source_sha256

SCHEMA_PATH = Path(__file__).with_name("trace_schema.json")
MAX_BYTES = 8 << 20  # a trace of thousands of operations fits; /dev/zero does not
MAX_DEPTH = 16  # a trace nests 8 deep
FORMAT = "verify-trace/2"
STARTS = ("new", "setup", "arbitrary")


class TraceError(Exception):
    """A trace file that cannot be used: the message is one line for the user."""


def shown(origin: object) -> str:
    """A file name as one printable line, whatever bytes it holds."""
    text = str(origin)
    return text if text.isprintable() else ascii(text)


# --- bytes to JSON ---------------------------------------------------------------


def read_text(path: Path) -> str:
    """The file's text, read only if it is a regular file of at most MAX_BYTES."""
    name = shown(path)
    try:
        data = read_regular(path, MAX_BYTES, "a trace")
    except UnreadableFile as e:
        raise TraceError(f"{name}: {e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TraceError(f"{name}: not UTF-8 text (byte {e.start})") from None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def nesting_depth(text: str) -> int:
    """How deep brackets nest outside strings (an unterminated string's brackets count too)."""
    depth = deepest = 0
    for ch in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if ch in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


class _Refused(ValueError):
    pass


def _no_float(text: str) -> Any:
    raise _Refused(f"the number {text} is not an integer")


def _no_constant(text: str) -> Any:
    raise _Refused(f"{text} is not a number a trace can hold")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 20:  # 2^64 - 1 has 20 digits; longer ones would only be refused later
        raise _Refused(f"the integer {text[:20]}... has more than 20 digits")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        repeated = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise _Refused(f"the key {repeated!r} appears twice in one object")
    return result


def parse_json(text: str, origin: str) -> Any:
    name = shown(origin)
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise TraceError(f"{name}: JSON nested {depth} deep; a trace nests at most {MAX_DEPTH} deep")
    try:
        return json.loads(
            text, parse_float=_no_float, parse_constant=_no_constant, parse_int=_int, object_pairs_hook=_unique_keys
        )
    except _Refused as e:
        raise TraceError(f"{name}: {e}") from None
    except (ValueError, RecursionError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TraceError(f"{name}: not valid JSON ({message})") from None


# --- the schema --------------------------------------------------------------------


@cache
def _schema() -> Any:
    return json.loads(SCHEMA_PATH.read_text())


@cache
def _validator() -> Any:
    import jsonschema  # here, not at the top: only a document the compiled validator refuses needs it

    return jsonschema.Draft202012Validator(_schema())


@cache
def _compiled_validator() -> Any:
    import jsonschema_rs  # https://github.com/Stranger6667/jsonschema (crates/jsonschema-py)

    return jsonschema_rs.Draft202012Validator(_schema())


def _schema_valid(doc: Any) -> bool:
    """Whether the document matches the schema.

    The compiled validator answers for a valid document (every cached or saved trace), about a hundred
    times faster. A document it refuses, or cannot take (a key that is not UTF-8), is judged by the
    reference validator, whose verdict and message stand: a refusal is the one it always was.
    tests/test_trace_input.py holds the two to the same verdicts on the fuzzed traces.
    """
    try:
        return bool(_compiled_validator().is_valid(doc))
    except (ValueError, TypeError, OverflowError):  # UnicodeEncodeError is a ValueError
        return False


def _where(path: Any) -> str:
    return _clip(shown("/".join(str(p) for p in path)), 100) or "top level"


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_schema(doc: Any, origin: str) -> None:
    """The document against verify/traces/trace_schema.json, then every integer at most 2^64 - 1."""
    name = shown(origin)
    if not isinstance(doc, dict) or not isinstance(doc.get("#meta"), dict):
        raise TraceError(f"{name}: not an ITF trace (no #meta record)")
    fmt = doc["#meta"].get("format")
    if fmt != FORMAT:
        raise TraceError(f"{name}: not a verify trace (#meta.format is {_clip(repr(fmt), 60)}, expected {FORMAT!r})")
    if not _schema_valid(doc):
        import jsonschema

        error = jsonschema.exceptions.best_match(_validator().iter_errors(doc))
        if error is not None:
            raise TraceError(f"{name}: {_where(error.absolute_path)}: {_clip(error.message)}")
    too_big = _first_too_big(doc, [])
    if too_big is not None:
        raise TraceError(f"{name}: {_where(too_big)}: above 2^64 - 1")


def _first_too_big(value: Any, path: list[Any]) -> list[Any] | None:
    if isinstance(value, dict):
        if set(value) == {"#bigint"} and int(value["#bigint"]) > USIZE_MAX:
            return path
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _first_too_big(item, [*path, key])
        if found is not None:
            return found
    return None


# --- #meta against the catalogue -----------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What a trace's #meta names, resolved in the catalogue."""

    model: ModelSpec
    prop: Property | SequenceProperty
    start: str


def catalogue_model(name: str, rule: str | None = None) -> ModelSpec | None:
    """A catalogue model, or one with seeded faults, named as `ModelSpec.with_faults` names it.

    With a policy `rule`, the model is the binder model of a policy the user defined (`binder/NAME`),
    which must parse: a rule that does not is a TraceError naming its column.
    """
    base_name, _, suffix = name.partition("!")
    base: ModelSpec | None
    if rule is not None:
        unbound, _, preset = base_name.partition("@")
        policy = unbound.removeprefix("binder/")
        if policy == unbound or (preset and preset not in PRESETS):
            return None
        try:
            base = policy_model(policy, rule)
        except ValueError as e:  # PolicyError is one: the column where the rule goes wrong
            raise TraceError(f"#meta.variant.rule: {e}") from None
        base = base.with_platform(preset) if preset else base
    else:
        try:
            base = model_named(base_name)
        except KeyError:
            base = None
    if base is None or not suffix:
        return base if "!" not in name else None
    faults = suffix.split("+")
    if any(f not in FAULTS for f in faults) or faults != sorted(set(faults)) or base.faults:
        return None
    return base.with_faults(frozenset(faults))


def is_source_model(name: str) -> bool:
    """A model `verify run --source` names (verify/source/steps.py): kvvec-src/T, binder-src."""
    base = name.partition("!")[0].partition("@")[0]
    return base == "binder-src" or base.startswith("kvvec-src/")


def _check_kernel_source(kernel_source: dict[str, str], refuse: Callable[[str, str], TraceError]) -> None:
    """The file a source model's trace was found on is there, with the content it had then."""
    path = kernel_source["path"]
    shown_path = _clip(shown(path), 200)
    if not os.path.lexists(path):
        raise refuse("kernel_source.path", f"{shown_path} is missing (the kernel source the trace was found on)")
    try:
        digest = source_sha256(Path(path))
    except UnreadableFile as e:
        raise refuse("kernel_source.path", f"{shown_path}: {e}") from None
    if digest != kernel_source["sha256"]:
        raise refuse("kernel_source.sha256", f"{shown_path} has changed since the trace was found on it (its "
                     f"SHA-256 is now {digest}, not {kernel_source['sha256']})")


def page_sizes(model: ModelSpec) -> tuple[int, ...]:
    """PAGE_SIZE values a trace of the model may have: the explorer's small page too, for binder."""
    if model.platform is not None:
        return (model.page_size(0),)
    return (*PAGE_SIZES, INSTANCE.page_size) if model.policy is not None else PAGE_SIZES


@cache
def _properties(page_size: int) -> dict[str, Property | SequenceProperty]:
    return {p.id: p for p in all_properties(page_size)}


def check_meta(meta: dict[str, Any], origin: str) -> Subject:
    """#meta (already schema-valid) names a known model and an applicable property, consistently."""
    name = shown(origin)

    def refuse(field: str, why: str) -> TraceError:
        return TraceError(f"{name}: #meta.{field}: {why}")

    kernel_source = meta.get("kernel_source")
    if is_source_model(meta["model"]):
        if kernel_source is None:
            raise refuse("model", f"{_clip(repr(meta['model']), 80)} is read from a kernel source the trace does not"
                         " name (a trace of an older verify): `verify run --source PATH` finds it again")
        model = source_model_named(meta["model"], kernel_source["path"], kernel_source["sha256"])
        if model is not None:
            _check_kernel_source(kernel_source, refuse)
    elif kernel_source is not None:
        raise refuse("kernel_source", f"{_clip(repr(meta['model']), 80)} is not read from kernel source")
    else:
        try:
            model = catalogue_model(meta["model"], meta["variant"].get("rule"))
        except TraceError as e:
            raise TraceError(f"{name}: {e}") from None
    if model is None:
        raise refuse("model", f"{_clip(repr(meta['model']), 80)} is not a model of the catalogue")
    variant, params = meta["variant"], meta["parameters"]
    if variant["faults"] != sorted(model.faults):
        raise refuse("variant.faults", f"{_clip(str(variant['faults']), 100)} are not the faults of {model.name}")
    if variant.get("choices", {}) != model.code.choices():
        why = f"{_clip(str(variant.get('choices', {})), 100)} are not the kernel-code choices of {model.name}"
        raise refuse("variant.choices", f"{why} ({model.code.choices()})")
    # A model read from a context.rs runs the policy its deregister_process makes, named SOURCE_POLICY.
    policy = SOURCE_POLICY if model.source is not None and model.policy is not None else model.policy
    if variant["policy"] != policy:
        raise refuse("variant.policy", f"{variant['policy']!r} is not the policy of {model.name} ({policy!r})")
    if params["elem_size"] not in model.sizes():
        raise refuse("parameters.elem_size", f"{params['elem_size']} is not an element size of {model.name}")
    if params["page_size"] not in page_sizes(model):
        raise refuse("parameters.page_size", f"{params['page_size']} is not a PAGE_SIZE {model.name} is checked with")
    prop = _properties(params["page_size"]).get(meta["property"])
    if prop is None:
        raise refuse("property", f"{_clip(repr(meta['property']), 80)} is not a property of the catalogue")
    if not applicable(prop, model):
        raise refuse("property", f"{prop.id} does not apply to {model.name}")
    start = meta["start"]
    allowed = {
        StepProperty: ("arbitrary",),
        Scenario: ("setup",),
        KernelTest: ("setup",),
        SequenceProperty: ("new", "arbitrary"),
    }
    if start not in allowed[type(prop)]:
        raise refuse("start", f"{start!r}: a trace of {prop.id} starts {' or '.join(allowed[type(prop)])}")
    if start != "setup" and meta["setup"]:
        raise refuse("setup", f"only a trace that starts from its setup has one (start is {start!r})")
    cycle_from = meta["cycle_from"]
    if cycle_from is not None and not isinstance(prop, SequenceProperty):
        raise refuse("cycle_from", f"{prop.id} is not about a cycle")
    return Subject(model, prop, start)
