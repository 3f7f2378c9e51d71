"""Reading checklist files: YAML in, a validated `ChecklistFile` out, or errors that name the file, line and field."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from backend.checklists.schemas import ChecklistFile


@dataclass(frozen=True)
class FileError:
    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


class ChecklistFileInvalid(Exception):
    def __init__(self, errors: list[FileError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to the line it points at (1-based)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            match = node.value[part]
        else:
            match = None
        if match is None:
            break
        node = match
        line = node.start_mark.line + 1
    return line


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_checklist_file(path: Path, *, name_must_match: bool = True) -> ChecklistFile:
    """A file of the shipped directory must be named `<code>@<version>.yaml`; an imported file may have any name."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ChecklistFileInvalid([FileError(path.name, None, None, f"cannot read: {exc.strerror}")]) from exc
    return parse_checklist_bytes(raw, path.name, name_must_match=name_must_match)


def parse_checklist_bytes(raw: bytes, name: str, *, name_must_match: bool = False) -> ChecklistFile:
    """Validate one checklist given as YAML bytes; every error names the file, the line and the field."""
    try:
        text = raw.decode("utf-8")
        root = yaml.compose(text)
        data: Any = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise ChecklistFileInvalid([FileError(name, None, None, f"not UTF-8: {exc}")]) from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ChecklistFileInvalid([FileError(name, line, None, f"YAML syntax: {exc.problem}")]) from exc
    except yaml.YAMLError as exc:  # anything else the parser refuses (e.g. a document that is no YAML at all)
        raise ChecklistFileInvalid([FileError(name, 1, None, f"YAML syntax: {exc}")]) from exc
    if not isinstance(data, dict):
        raise ChecklistFileInvalid([FileError(name, 1, None, "the file must be a mapping of checklist fields")])
    try:
        parsed = ChecklistFile.model_validate(data, context={"defer_consistency": True})
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            message = error["msg"].removeprefix("Value error, ")
            errors.append(FileError(name, _line_of(root, loc), _dotted(loc) or None, message))
        raise ChecklistFileInvalid(errors) from exc
    problems = parsed.consistency_problems()
    if problems:
        raise ChecklistFileInvalid([FileError(name, _line_of(root, loc), _dotted(loc), message) for loc, message in problems])
    expected = f"{parsed.code}@{parsed.version}.yaml"
    if name_must_match and name != expected:
        raise ChecklistFileInvalid([FileError(name, 1, "code", f"file name must be {expected} (code@version.yaml)")])
    return parsed


def content_hash(checklist: ChecklistFile) -> str:
    """sha256 over a canonical JSON form: comments and layout do not count, any change of content does."""
    canonical = json.dumps(checklist.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def checklist_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.yaml"))
