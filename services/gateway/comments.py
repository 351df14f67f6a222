"""Proto comments, for the OpenAPI document: full name → the comment written above it.

Generated Python descriptors carry no comments, so `make proto` also writes
`hindsight/v1/source_info.binpb`: a FileDescriptorSet of our protos with source info. Its
locations are paths into each FileDescriptorProto (google/protobuf/descriptor.proto numbers
them: a file's message_type is 4, a message's field 2, ...); this module turns them into names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import resources

from google.protobuf import descriptor_pb2

logger = logging.getLogger("hindsight.gateway")

SOURCE_INFO = "source_info.binpb"
# Field numbers in descriptor.proto.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2


def comments_of(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """{full name: comment} for messages, fields, enums, enum values, services and methods.

    The leading comment (the block right above), else the trailing one (same line); detached
    comments (separated by a blank line) are not about the element."""
    out: dict[str, str] = {}
    for file in files:
        where = {tuple(loc.path): loc for loc in file.source_code_info.location}

        def put(name: str, path: tuple[int, ...]) -> None:
            loc = where.get(path)
            text = _clean(loc.leading_comments or loc.trailing_comments) if loc is not None else ""
            if text:
                out[name] = text

        def enum(desc: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...], scope: str) -> None:
            name = f"{scope}.{desc.name}" if scope else desc.name
            put(name, path)
            for i, value in enumerate(desc.value):
                # Enum values are scoped like the enum's siblings in proto; keyed under the enum here.
                put(f"{name}.{value.name}", (*path, _ENUM_VALUE, i))

        def message(desc: descriptor_pb2.DescriptorProto, path: tuple[int, ...], scope: str) -> None:
            name = f"{scope}.{desc.name}" if scope else desc.name
            put(name, path)
            for i, field in enumerate(desc.field):
                put(f"{name}.{field.name}", (*path, _MESSAGE_FIELD, i))
            for i, nested in enumerate(desc.nested_type):
                message(nested, (*path, _MESSAGE_NESTED, i), name)
            for i, nested_enum in enumerate(desc.enum_type):
                enum(nested_enum, (*path, _MESSAGE_ENUM, i), name)

        for i, msg in enumerate(file.message_type):
            message(msg, (_FILE_MESSAGE, i), file.package)
        for i, en in enumerate(file.enum_type):
            enum(en, (_FILE_ENUM, i), file.package)
        for i, service in enumerate(file.service):
            name = f"{file.package}.{service.name}" if file.package else service.name
            put(name, (_FILE_SERVICE, i))
            for j, method in enumerate(service.method):
                put(f"{name}.{method.name}", (_FILE_SERVICE, i, _SERVICE_METHOD, j))
    return out


def load_comments(package: str = "hindsight.v1") -> dict[str, str]:
    """The comments of `package`'s protos from its SOURCE_INFO file; {} (logged) without one."""
    try:
        data = resources.files(package).joinpath(SOURCE_INFO).read_bytes()
    except ModuleNotFoundError:  # protos compiled at run time (no Python package): no comments
        return {}
    except OSError:
        logger.warning("no %s in %s: the OpenAPI document has no descriptions (run `make proto`)",
                       SOURCE_INFO, package)
        return {}
    return comments_of(descriptor_pb2.FileDescriptorSet.FromString(data).file)


def _clean(comment: str) -> str:
    """A comment's text: each line without the one space after `//`, blank ends dropped."""
    lines = [line[1:] if line.startswith(" ") else line for line in comment.splitlines()]
    return "\n".join(lines).strip()
