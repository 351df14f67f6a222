"""HTTP bindings compiled from the `google.api.http` rules of the services' descriptors.

One `Binding` per rule (additional_bindings included): HTTP method, path template, body
mapping and the kind of response. A client-streaming method is served when its body is one
google.api.HttpBody field (`request_stream`: the raw request body, streamed); any other client
stream, and any bidirectional one, is refused at start-up. Path templates follow
google/api/http.proto:

    Template = "/" Segments [ Verb ] ;   Segment = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;   Verb = ":" LITERAL ;
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf import message as _message
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass
from hindsight.v1 import options_pb2


HTTP_BODY = "google.api.HttpBody"
_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=@%-]+$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BindingError(ValueError):
    """A `google.api.http` rule that cannot be served; raised at start-up, never per request."""


class ResponseKind(enum.Enum):
    UNARY = "unary"  # one message → JSON
    STREAM = "stream"  # server stream of messages → SSE or NDJSON
    BYTES = "bytes"  # google.api.HttpBody (streamed or not) → raw bytes


class _Wild(enum.Enum):
    ONE = "*"
    MANY = "**"


@dataclass(frozen=True, slots=True)
class PathVariable:
    field_path: tuple[str, ...]  # proto field names, outermost first
    start: int  # index of its first template segment
    end: int  # one past its last template segment
    multi_segment: bool  # may span several path segments ('**' or a multi-segment pattern)

    @property
    def name(self) -> str:
        return ".".join(self.field_path)


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A parsed path template; `match()` takes the request's raw (percent-encoded) path."""

    template: str
    segments: tuple[str | _Wild, ...]
    variables: tuple[PathVariable, ...]
    verb: str | None

    @classmethod
    def parse(cls, template: str) -> PathTemplate:
        if not template.startswith("/"):
            raise BindingError(f"path template {template!r} must start with '/'")
        body, verb = _split_verb(template)
        segments: list[str | _Wild] = []
        variables: list[PathVariable] = []
        for token in _split_segments(body[1:], template):
            if token.startswith("{"):
                inner = token[1:-1]
                name, eq, pattern = inner.partition("=")
                path = tuple(name.split("."))
                if not all(_IDENT.match(p) for p in path):
                    raise BindingError(f"bad variable {token!r} in {template!r}")
                parts = pattern.split("/") if eq else ["*"]
                start = len(segments)
                for part in parts:
                    if "{" in part or "}" in part:
                        raise BindingError(f"nested variable in {template!r}")
                    segments.append(_segment(part, template))
                multi = len(parts) > 1 or _Wild.MANY in segments[start:]
                variables.append(PathVariable(path, start, len(segments), multi))
            else:
                segments.append(_segment(token, template))
        if _Wild.MANY in segments[:-1]:
            raise BindingError(f"'**' must be the last segment of {template!r}")
        names = [v.name for v in variables]
        if len(set(names)) != len(names):
            raise BindingError(f"a variable is bound twice in {template!r}")
        return cls(template, tuple(segments), tuple(variables), verb)

    def match(self, raw_segments: Sequence[str], verb: str | None) -> dict[str, str] | None:
        """Variable values (decoded) keyed by dotted field path, or None when it does not match.

        `raw_segments` are the percent-encoded segments of the request path, the verb already
        split off the last one.
        """
        if verb != self.verb:
            return None
        n = len(self.segments)
        tail_many = n > 0 and self.segments[-1] is _Wild.MANY
        if (len(raw_segments) < n - 1) if tail_many else (len(raw_segments) != n):
            return None
        for i, seg in enumerate(self.segments):
            if seg is _Wild.MANY:
                break
            raw = raw_segments[i]
            if seg is _Wild.ONE:
                if not raw:
                    return None
            elif unquote(raw) != seg:
                return None
        values: dict[str, str] = {}
        for var in self.variables:
            end = len(raw_segments) if tail_many and var.end == n else var.end
            parts = raw_segments[var.start:end]
            if var.multi_segment:
                # http.proto: multi-segment variables are decoded except for "%2F", which stays
                # encoded so that the value's own slashes remain distinguishable.
                values[var.name] = "/".join(unquote(re.sub("%2[Ff]", "%252F", s)) for s in parts)
            else:
                values[var.name] = unquote(parts[0])
        return values

    def openapi_path(self) -> str:
        """The template as an OpenAPI path: each variable becomes `{dotted.name}`."""
        out: list[str] = []
        i = 0
        by_start = {v.start: v for v in self.variables}
        while i < len(self.segments):
            var = by_start.get(i)
            if var is not None:
                out.append("{" + var.name + "}")
                i = var.end
            else:
                seg = self.segments[i]
                out.append(seg.value if isinstance(seg, _Wild) else seg)
                i += 1
        return "/" + "/".join(out) + (":" + self.verb if self.verb else "")

    @property
    def specificity(self) -> tuple[int, ...]:
        """Sort key: literal segments before variables, variables before '**'."""
        return tuple(2 if s is _Wild.MANY else 1 if s is _Wild.ONE else 0 for s in self.segments)


@dataclass(frozen=True, slots=True)
class BatchedStream:
    """The sibling a server stream is read through (the `hindsight.v1.batched_by` option)."""

    method: MethodDescriptor
    batch_class: type[_message.Message]
    field: str  # the batch's one field: repeated <the stream's response type>

    @property
    def grpc_path(self) -> str:
        return method_path(self.method)


def method_path(method: MethodDescriptor) -> str:
    """The method's gRPC path, /package.Service/Method."""
    return f"/{method.containing_service.full_name}/{method.name}"


@dataclass(frozen=True, slots=True)
class Binding:
    method: MethodDescriptor
    http_method: str  # GET, POST, ... or a custom verb's kind
    template: PathTemplate
    body: str  # "": no body; "*": the whole request; else a top-level field name
    response_body: str  # "": the whole response; else a top-level field name
    kind: ResponseKind
    request_class: type[_message.Message]
    response_class: type[_message.Message]
    batched: BatchedStream | None = None
    # A client stream whose `body` is a google.api.HttpBody field: the request body is streamed
    # to the engine, the first message from the path and query, then messages that each set only
    # the body field (services/gateway/uploads.py).
    request_stream: bool = False

    @property
    def grpc_path(self) -> str:
        return method_path(self.method)

    @property
    def name(self) -> str:
        return str(self.method.full_name)

    def bound_fields(self) -> frozenset[str]:
        """Dotted field paths set from the path."""
        return frozenset(v.name for v in self.template.variables)


def compile_bindings(services: Iterable[ServiceDescriptor]) -> list[Binding]:
    """Every rule of every method, most specific path first."""
    out: list[Binding] = []
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            rule = options.Extensions[annotations_pb2.http]
            if method.client_streaming and method.server_streaming:
                raise BindingError(f"{method.full_name} is a bidirectional stream, which HTTP/1.1 cannot carry "
                                   "(a request body and a response do not interleave): remove its "
                                   "google.api.http rule and call it over gRPC")
            out.append(_binding(method, rule))
            for extra in rule.additional_bindings:
                if extra.additional_bindings:
                    raise BindingError(f"{method.full_name}: additional_bindings must not nest")
                out.append(_binding(method, extra))
    # Stable sort: a literal segment wins over a variable at the same position.
    out.sort(key=lambda b: b.template.specificity)
    return out


def known_verbs(bindings: Iterable[Binding]) -> frozenset[str]:
    return frozenset(b.template.verb for b in bindings if b.template.verb)


def _binding(method: MethodDescriptor, rule: http_pb2.HttpRule) -> Binding:
    pattern = rule.WhichOneof("pattern")
    if pattern is None:
        raise BindingError(f"{method.full_name}: http rule has no pattern")
    if pattern == "custom":
        http_method, path = rule.custom.kind.upper(), rule.custom.path
    else:
        http_method, path = pattern.upper(), getattr(rule, pattern)
    try:
        template = PathTemplate.parse(path)
    except BindingError as exc:
        raise BindingError(f"{method.full_name}: {exc}") from None
    request = method.input_type
    for var in template.variables:
        field = _resolve(request, var.field_path, method)
        if field.is_repeated or field.type == FieldDescriptor.TYPE_MESSAGE:
            raise BindingError(f"{method.full_name}: path variable {var.name} must be a singular scalar field")
    if rule.body not in ("", "*"):
        _resolve(request, (rule.body,), method)
    if method.client_streaming:
        _check_request_stream(method, rule)
    if rule.response_body:
        _resolve(method.output_type, (rule.response_body,), method)
    if method.output_type.full_name == HTTP_BODY:
        kind = ResponseKind.BYTES
    elif method.server_streaming:
        kind = ResponseKind.STREAM
    else:
        kind = ResponseKind.UNARY
    batched = _batched_stream(method) if kind is ResponseKind.STREAM and not rule.response_body else None
    return Binding(method=method, http_method=http_method, template=template, body=rule.body,
                   response_body=rule.response_body, kind=kind,
                   request_class=GetMessageClass(request), response_class=GetMessageClass(method.output_type),
                   batched=batched, request_stream=method.client_streaming)


def _check_request_stream(method: MethodDescriptor, rule: http_pb2.HttpRule) -> None:
    """A client stream is served when its body is one google.api.HttpBody field: the raw request
    body, streamed in messages that each set only that field. Nothing else has a framing."""
    field = method.input_type.fields_by_name.get(rule.body) if rule.body not in ("", "*") else None
    if field is None or field.is_repeated or field.message_type is None \
            or field.message_type.full_name != HTTP_BODY:
        shown = f'body: "{rule.body}"' if rule.body else "no body"
        raise BindingError(f"{method.full_name} is client-streaming: its http rule must bind the body to a "
                           f"singular {HTTP_BODY} field of {method.input_type.full_name} (body: \"<field>\"), "
                           f"whose messages then carry the raw request body piece by piece; it has {shown}")


def _batched_stream(method: MethodDescriptor) -> BatchedStream | None:
    """The sibling named by the method's `hindsight.v1.batched_by` option, checked to be one:
    same service, server-streaming, a request every field of this request encodes into, and a
    response that is one repeated field of this method's response type."""
    options = method.GetOptions()
    if not options.HasExtension(options_pb2.batched_by):
        return None
    name = options.Extensions[options_pb2.batched_by]
    where = f"{method.full_name}: batched_by {name!r}"
    sibling = method.containing_service.methods_by_name.get(name)
    if sibling is None or sibling is method:
        raise BindingError(f"{where} is not another method of {method.containing_service.full_name}")
    if not sibling.server_streaming or sibling.client_streaming:
        raise BindingError(f"{where} must be server-streaming only")
    theirs = sibling.input_type.fields_by_number
    for mine in method.input_type.fields:
        other = theirs.get(mine.number)
        if other is None or not _same_shape(mine, other):
            raise BindingError(f"{where}: its request lacks field {mine.number} ({mine.name}) as "
                               f"{method.input_type.full_name} has it")
    fields = sibling.output_type.fields
    item = fields[0].message_type if len(fields) == 1 and fields[0].is_repeated else None
    if item is None or item.full_name != method.output_type.full_name:
        raise BindingError(f"{where}: its response must have exactly one field, "
                           f"repeated {method.output_type.full_name}")
    return BatchedStream(method=sibling, batch_class=GetMessageClass(sibling.output_type), field=fields[0].name)


def _same_shape(a: FieldDescriptor, b: FieldDescriptor) -> bool:
    """Whether a value of field `a` is read back unchanged as field `b` (same number assumed)."""
    def named(f: FieldDescriptor) -> str | None:
        t = f.message_type or f.enum_type
        return t.full_name if t is not None else None

    return a.type == b.type and a.is_repeated == b.is_repeated and named(a) == named(b)


def _resolve(message: Descriptor, path: Sequence[str], method: MethodDescriptor) -> FieldDescriptor:
    desc: Descriptor | None = message
    found: FieldDescriptor | None = None
    for part in path:
        if desc is None:
            raise BindingError(f"{method.full_name}: {'.'.join(path)} goes through a non-message field")
        found = desc.fields_by_name.get(part)
        if found is None:
            raise BindingError(f"{method.full_name}: {desc.full_name} has no field {part!r}")
        desc = found.message_type
    if found is None:
        raise BindingError(f"{method.full_name}: empty field path")
    return found


def _split_verb(template: str) -> tuple[str, str | None]:
    """Split `:verb` off the end: the last ':' outside braces with no '/' after it."""
    depth = 0
    colon = -1
    for i, ch in enumerate(template):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "/" and depth == 0:
            colon = -1
        elif ch == ":" and depth == 0:
            colon = i
    if depth != 0:
        raise BindingError(f"unbalanced braces in {template!r}")
    if colon < 0:
        return template, None
    verb = template[colon + 1:]
    if not _LITERAL.match(verb):
        raise BindingError(f"bad verb {verb!r} in {template!r}")
    return template[:colon], verb


def _split_segments(body: str, template: str) -> list[str]:
    """Split on '/' outside braces."""
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "/" and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    if any(not s for s in out):
        raise BindingError(f"empty segment in {template!r}")
    return out


def _segment(text: str, template: str) -> str | _Wild:
    if text == "*":
        return _Wild.ONE
    if text == "**":
        return _Wild.MANY
    if not _LITERAL.match(text):
        raise BindingError(f"bad literal segment {text!r} in {template!r}")
    return text
