"""Workspace as code: YAML files whose top-level sections become versioned definitions.

::

    # workspace.yaml
    content:
      welcome_banner: {variants: {web: {headline: "Hello {{ traits.first_name }}"}}}
    placements:
      home_hero: {channel: web, candidates: [welcome_banner], default: welcome_banner}
    rules:
      home_hero:
        - {id: new_visitor, when: {"computed.orders": 0}, show: welcome_banner}

Each section is handled by whoever owns that kind of definition: a package calls
:func:`register_section` with a validator (and optionally how to turn an entry into a stored
body, or how to write it). :func:`apply` validates **every** entry of every file first and
writes nothing if anything is wrong; each problem names the file, line, section, key and
field. Then every changed entry becomes a new version in the
:class:`~personify.definitions.DefinitionStore` (unchanged entries write nothing), so an apply
can be diffed and rolled back like any other change.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from personify.definitions import Definition, DefinitionStore
from personify.definitions.diff import json_diff
from personify.definitions.records import KEY_PATTERN, canonical
from personify.errors import InvalidInput, NotFound, Problem

# Modules that register sections when imported; missing ones are skipped (optional packages).
SECTION_MODULES: Final = (
    "personify.segments.sections",
    "personify.decide.sections",
    "personify.experiments.sections",
)

ValidateFn = Callable[[str, Any, "Plan"], list[Problem]]
"""``(key, entry, plan) -> problems``; each problem's field is relative to the entry."""
ApplyFn = Callable[[DefinitionStore, str, dict[str, Any], str, str], Definition]
"""``(store, key, body, actor, message) -> Definition``; writes one validated entry."""


@dataclass(frozen=True)
class Section:
    """How one top-level section is checked, stored and written."""

    name: str
    kind: str
    validate: ValidateFn
    to_body: Callable[[Any], dict[str, Any]]
    write: ApplyFn | None = None


_SECTIONS: dict[str, Section] = {}


def _mapping_body(entry: Any) -> dict[str, Any]:
    return dict(entry)


def register_section(
    name: str,
    validate_fn: ValidateFn,
    apply_fn: ApplyFn | None = None,
    *,
    kind: str | None = None,
    to_body: Callable[[Any], dict[str, Any]] | None = None,
) -> None:
    """Teach :func:`apply` a top-level section (registering a name again replaces it).

    ``kind`` is the definition kind entries are stored under (default: ``name``).
    ``to_body`` turns a validated entry into the stored JSON object (default: the mapping
    itself). ``apply_fn`` replaces the default write, ``store.put(kind, key, body, ...)``.
    Sections are validated and written in registration order.
    """
    _SECTIONS[name] = Section(name, kind or name, validate_fn, to_body or _mapping_body, apply_fn)


def sections() -> dict[str, Section]:
    """Every registered section, after importing the packages that provide them."""
    for module in SECTION_MODULES:
        try:
            found = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            found = None
        if found is not None:
            importlib.import_module(module)
    return dict(_SECTIONS)


# -- reading YAML with line numbers -------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (PyYAML silently keeps the last one) and the
    YAML 1.1 readings of unquoted scalars that surprise people (see :func:`_unquoted`)."""


_TAG: Final = "tag:yaml.org,2002:"
_PLAIN_BOOLS: Final = frozenset({"true", "false", "True", "False", "TRUE", "FALSE"})


def _unquoted(node: yaml.ScalarNode) -> str | None:
    """Why a plain (unquoted) scalar must be quoted, or None when it reads as it looks.

    PyYAML implements YAML 1.1, where ``NO``, ``yes`` and ``off`` are booleans, ``01234`` is
    octal (668), ``12:30`` is base 60 (750) and ``2026-11-24`` a date; YAML 1.2 and JSON read
    them differently, and a definition must not depend on which. ``true``/``false``, decimal
    and hexadecimal integers and floats stay as they are.
    """
    if node.style is not None:  # quoted, or a block scalar: always text
        return None
    text, tag = node.value, node.tag
    quote = f'quote it ("{text}") to keep it as text'
    if tag == _TAG + "bool" and text not in _PLAIN_BOOLS:
        value = "true" if text.lower() in ("yes", "on") else "false"
        return f"unquoted {text} is read as the boolean {value}; {quote}, or write {value}"
    if tag == _TAG + "timestamp":
        return f"unquoted {text} is read as a date, not text; {quote}"
    if tag in (_TAG + "int", _TAG + "float"):
        digits = text.lstrip("+-")
        if ":" in digits:
            value = yaml.safe_load(text)
            return f"unquoted {text} is read as the base-60 number {value}; {quote}"
        if tag == _TAG + "int" and digits[:2] in ("0b", "0B"):
            return f"unquoted {text} is read as the binary number {int(digits[2:], 2)}; {quote}"
        if tag == _TAG + "int" and len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
            value = yaml.safe_load(text)
            return (
                f"unquoted {text} is read as the octal number {value}; {quote}, "
                "or drop the leading zero for a number"
            )
    return None


@dataclass
class Entry:
    """One entry of one section, and where it was written."""

    section: str
    key: str
    value: Any
    file: Path
    lines: dict[str, int]

    def where(self, field_path: str = "") -> str:
        """``file:line section.key.field`` for a problem inside this entry."""
        path = f"{self.section}.{self.key}" + (
            "" if not field_path else field_path if field_path[0] == "[" else "." + field_path
        )
        return f"{self.file}:{_line_for(self.lines, path)}: {path}"


def _line_for(lines: Mapping[str, int], path: str) -> int:
    # The deepest prefix of the path that was written in the file.
    probe = path
    while probe:
        if probe in lines:
            return lines[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return 1


MAX_NODES: Final = 200_000


class _TooLarge(Exception):
    """The document expands (through aliases, perhaps recursive ones) beyond MAX_NODES."""


@dataclass
class _Walk:
    """What one pass over a YAML node graph found: lines per path, duplicate keys, size."""

    lines: dict[str, int] = field(default_factory=dict)
    duplicates: list[tuple[int, str]] = field(default_factory=list)
    unquoted: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)
    visits: int = 0


def _walk(node: yaml.Node, path: str, found: _Walk) -> None:
    # Aliases make a YAML tree a graph; counting every visit bounds "billion laughs" and
    # self-referencing documents before they reach the constructor or the JSON encoder.
    found.visits += 1
    if found.visits > MAX_NODES:
        raise _TooLarge
    found.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode):
        _check_scalar(node, path, found)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            sub = f"{path}.{key}" if path else key
            if key in seen:
                line = key_node.start_mark.line + 1
                found.duplicates.append(
                    (line, f"{sub}: key written twice (lines {seen[key]} and {line}); keep one")
                )
            seen[key] = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode):
                _check_scalar(key_node, sub, found)
            found.lines.setdefault(sub, seen[key])  # a key's line, not its value's
            _walk(value_node, sub, found)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, f"{path}[{index}]", found)


def _check_scalar(node: yaml.ScalarNode, path: str, found: _Walk) -> None:
    why = _unquoted(node)
    if why is not None:  # once per place in the file, however many aliases reach it
        mark = node.start_mark
        found.unquoted.setdefault(
            (mark.line, mark.column), (mark.line + 1, f"{path or '(document)'}: {why}")
        )


def _read(file: Path) -> tuple[Any, dict[str, int], list[Problem]]:
    """The file's data, the line of every path in it, and what stops it being read."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, {}, [Problem(str(file), f"cannot read: {exc}")]
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, []
        found = _Walk()
        try:
            _walk(node, "", found)
        except _TooLarge:
            message = f"expands to more than {MAX_NODES} values (check anchors and aliases)"
            return None, {}, [Problem(str(file), message)]
        if found.duplicates or found.unquoted:
            refused = sorted([*found.duplicates, *found.unquoted.values()], key=lambda i: i[0])
            return None, {}, [Problem(f"{file}:{n}", text) for n, text in refused]
        return loader.construct_document(node), found.lines, []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, {}, [Problem(f"{file}{line}", f"not valid YAML: {problem}")]
    finally:
        loader.dispose()


def workspace_files(path: Path) -> list[Path]:
    """The YAML files of a workspace: ``path`` itself, or every ``*.yaml``/``*.yml`` under it."""
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    raise NotFound(
        f"no workspace file or folder at {path}",
        hint="pass a YAML file or a folder of YAML files",
    )


# -- validation ---------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything one apply would write; validators use it to check cross-references."""

    store: DefinitionStore
    known: dict[str, Section]
    entries: dict[str, dict[str, Entry]] = field(default_factory=dict)

    def exists(self, section: str, key: str) -> bool:
        """Whether ``key`` is defined in this apply or is already live in the store."""
        if key in self.entries.get(section, {}):
            return True
        spec = self.known.get(section)
        if spec is None:
            return False
        try:
            self.store.get(spec.kind, key)
        except NotFound:
            return False
        return True

    def entry(self, section: str, key: str) -> Any | None:
        """The value written in this apply for ``section.key`` (``None`` if not in it)."""
        found = self.entries.get(section, {}).get(key)
        return found.value if found is not None else None

    def __iter__(self) -> Iterator[Entry]:
        for name in self.known:
            yield from self.entries.get(name, {}).values()


def _collect(files: list[Path], plan: Plan) -> list[Problem]:
    problems: list[Problem] = []
    for file in files:
        data, lines, unreadable = _read(file)
        problems += unreadable
        if data is None:
            continue
        if not isinstance(data, dict):
            problems.append(Problem(f"{file}:1", "a workspace file must be a mapping of sections"))
            continue
        for name, body in data.items():
            where = f"{file}:{lines.get(str(name), 1)}: {name}"
            if name not in plan.known:
                problems.append(Problem(where, _unknown_section(str(name), plan.known)))
                continue
            if body is None:
                continue
            if not isinstance(body, dict):
                problems.append(Problem(where, "a section must map each key to its definition"))
                continue
            for key, value in body.items():
                entry = Entry(name, str(key), value, file, lines)
                earlier = plan.entries.setdefault(name, {}).get(entry.key)
                if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
                    problems.append(
                        Problem(
                            entry.where(),
                            f"{key!r} is not a valid key: start with a letter or digit, then "
                            "letters, digits, '_', '.', ':' or '-'",
                        )
                    )
                elif earlier is not None:
                    problems.append(
                        Problem(entry.where(), f"also defined in {earlier.where()}; keep one")
                    )
                else:
                    plan.entries[name][entry.key] = entry
    return problems


def _unknown_section(name: str, known: Mapping[str, Section]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    tail = f'; did you mean "{close[0]}"?' if close else ""
    return f'unknown section "{name}": known sections are {", ".join(known) or "(none)"}{tail}'


def _validate(plan: Plan) -> list[Problem]:
    problems: list[Problem] = []
    for entry in plan:
        spec = plan.known[entry.section]
        try:
            found = spec.validate(entry.key, entry.value, plan)
        except InvalidInput as exc:  # a validator may raise instead of returning problems
            found = exc.problems or [Problem("", exc.message)]
        problems.extend(Problem(entry.where(p.field), p.message) for p in found)
        if not found:
            try:
                canonical(spec.to_body(entry.value))
            except (InvalidInput, TypeError, ValueError) as exc:
                problems.append(Problem(entry.where(), f"cannot be stored: {exc}"))
    return problems


def _invalid(problems: list[Problem]) -> InvalidInput:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return InvalidInput(
        f"workspace is invalid, nothing was applied: {first.field}: {first.message}{more}",
        hint="fix each listed problem and apply again (use --dry-run to check)",
        problems=problems,
    )


# -- applying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What applying one entry did (or, in a dry run, would do)."""

    section: str
    key: str
    action: str  # "create" | "update" | "unchanged"
    version: int | None
    diff: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "key": self.key,
            "action": self.action,
            "version": self.version,
            "diff": self.diff,
        }


def _current(store: DefinitionStore, kind: str, key: str) -> Definition | None:
    try:
        return store.get(kind, key)
    except NotFound:
        return None


def apply(
    path: Path | str, store: DefinitionStore, actor: str, *, dry_run: bool = False
) -> list[Change]:
    """Validate every entry of the workspace at ``path``, then write the changed ones.

    Raises :class:`~personify.errors.InvalidInput` listing every problem (and writes
    nothing) if any entry is invalid. With ``dry_run`` nothing is written either way.
    """
    known = sections()
    plan = Plan(store, known)
    files = workspace_files(Path(path))
    problems = _collect(files, plan)
    problems += _validate(plan)
    if problems:
        raise _invalid(problems)
    changes: list[Change] = []
    for entry in plan:
        spec = known[entry.section]
        body = spec.to_body(entry.value)
        before = _current(store, spec.kind, entry.key)
        if before is not None and canonical(before.body) == canonical(body):
            changes.append(Change(entry.section, entry.key, "unchanged", before.version, []))
            continue
        diff = json_diff(before.body if before else {}, body)
        version = None
        if not dry_run:
            message = f"apply {entry.file.name}"
            if spec.write is not None:
                written = spec.write(store, entry.key, body, actor, message)
            else:
                written = store.put(spec.kind, entry.key, body, actor, message)
            version = written.version
        action = "create" if before is None else "update"
        changes.append(Change(entry.section, entry.key, action, version, diff))
    return changes
