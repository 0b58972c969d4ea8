"""Just enough reading of Rego source text to find rules, their bodies and annotations.

The embedded engine (rego-cpp) compiles and evaluates policies but exposes no parse tree
and no trace, so the test runner, the coverage probe and ``explain`` read the source
themselves. This is not a Rego parser: it splits a module into top-level statements
(every statement starts in column 0, as ``opa fmt`` writes them), skipping strings and
comments while tracking bracket depth, and then cuts each rule into head and body.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RULE_NAME = re.compile(r"(?:default\s+)?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)")


@dataclass(frozen=True)
class Expr:
    """One top-level expression of a rule body, with its ``with`` modifiers split off."""

    text: str
    withs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RuleDef:
    """One rule definition (a rule name may have several, one per body)."""

    file: str
    line: int
    package: str
    name: str
    head: str
    body: str | None
    is_default: bool
    is_function: bool
    has_else: bool
    #: The whole statement as written (head and body).
    text: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)

    @property
    def rule_id(self) -> str:
        """Stable id for reports: ``file:line name``."""
        return f"{self.file}:{self.line} {self.name}"

    @property
    def is_test(self) -> bool:
        return self.name.startswith("test_")


@dataclass(frozen=True)
class Module:
    file: str
    package: str
    imports: tuple[str, ...]
    rules: tuple[RuleDef, ...]


def _mask(text: str) -> tuple[str, list[int]]:
    """Blank out strings and comments (same length) and give the bracket depth per char."""
    out = list(text)
    depth = [0] * (len(text) + 1)
    d = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        depth[i] = d
        if c == "#":
            while i < n and text[i] != "\n":
                out[i] = " "
                depth[i] = d
                i += 1
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                if out[k] != "\n":
                    out[k] = "x"
                depth[k] = d
            if j < n:
                depth[j] = d
            i = j + 1
            continue
        if c == "`":
            j = text.find("`", i + 1)
            j = n if j < 0 else j
            for k in range(i + 1, j):
                if out[k] != "\n":
                    out[k] = "x"
                depth[k] = d
            if j < n:
                depth[j] = d
            i = j + 1
            continue
        if c in "([{":
            d += 1
        elif c in ")]}":
            d = max(0, d - 1)
            depth[i] = d
        i += 1
    depth[n] = d
    return "".join(out), depth


def _find_top(masked: str, depth: list[int], pattern: str, start: int = 0) -> int:
    """First match of a keyword regex at bracket depth 0 (after ``start``), or -1."""
    for m in re.finditer(pattern, masked[start:]):
        pos = start + m.start()
        if depth[pos] == 0:
            return pos
    return -1


def split_expressions(body: str) -> list[Expr]:
    """Split a rule body into its top-level expressions (newline or ``;`` separated)."""
    masked, depth = _mask(body)
    parts: list[str] = []
    start = 0
    for i, c in enumerate(masked):
        if c in "\n;" and depth[i] == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    exprs: list[Expr] = []
    for raw in parts:
        text = _strip_comment(raw).strip()
        if not text:
            continue
        exprs.append(_split_withs(text))
    # A line that starts with an operator continues the expression above it.
    merged: list[Expr] = []
    for e in exprs:
        if merged and re.match(r"^(\|\||&&|\+|-|\*|/|==|!=|<|>|\bor\b|\band\b)", e.text):
            prev = merged.pop()
            merged.append(_split_withs(prev.text + " " + e.text))
        else:
            merged.append(e)
    return merged


def _strip_comment(text: str) -> str:
    """Drop a trailing ``# comment`` (a '#' inside a string is kept)."""
    masked, _ = _mask(text)
    for i, (a, b) in enumerate(zip(text, masked, strict=True)):
        if a == "#" and b == " ":
            return text[:i]
    return text


def _split_withs(text: str) -> Expr:
    masked, depth = _mask(text)
    cuts = [
        m.start()
        for m in re.finditer(r"\bwith\b", masked)
        if depth[m.start()] == 0
    ]
    if not cuts:
        return Expr(text)
    base = text[: cuts[0]].strip()
    withs: list[tuple[str, str]] = []
    bounds = [*cuts, len(text)]
    for a, b in itertools.pairwise(bounds):
        clause = text[a + len("with") : b]
        cm, cd = _mask(clause)
        pos = _find_top(cm, cd, r"\bas\b")
        if pos < 0:
            raise ValueError(f"cannot read with-clause: {clause.strip()!r}")
        withs.append((clause[:pos].strip(), clause[pos + 2 :].strip()))
    return Expr(base, tuple(withs))


def _annotations(comment_lines: list[str]) -> dict[str, Any]:
    """Parse a ``# METADATA`` block (YAML in comments) into a dict; {} when absent."""
    for i, line in enumerate(comment_lines):
        if line.strip() == "# METADATA":
            yaml_lines = [ln.strip()[1:].removeprefix(" ") for ln in comment_lines[i + 1 :]]
            loaded = yaml.safe_load("\n".join(yaml_lines)) or {}
            return loaded if isinstance(loaded, dict) else {}
    return {}


def parse_module(file: str, text: str) -> Module:
    """Cut one Rego module into its package, imports and rule definitions."""
    _, depth = _mask(text)
    lines = text.split("\n")
    offsets: list[int] = []
    pos = 0
    for ln in lines:
        offsets.append(pos)
        pos += len(ln) + 1
    # statement starts: column 0, depth 0, not blank, not a comment, not a closing brace
    starts: list[int] = []
    for idx, ln in enumerate(lines):
        off = offsets[idx]
        if ln and not ln[0].isspace() and not ln.startswith("#") and depth[off] == 0:
            if ln[0] in "}])" or ln.startswith("else"):
                continue
            starts.append(idx)
    package = ""
    imports: list[str] = []
    rules: list[RuleDef] = []
    for n, idx in enumerate(starts):
        end_line = starts[n + 1] if n + 1 < len(starts) else len(lines)
        # trailing comment lines belong to the next statement's annotations
        stmt_end = end_line
        while stmt_end - 1 > idx and (
            not lines[stmt_end - 1].strip() or lines[stmt_end - 1].lstrip().startswith("#")
        ):
            stmt_end -= 1
        stmt = "\n".join(lines[idx:stmt_end])
        comments: list[str] = []
        j = idx - 1
        while j >= 0 and lines[j].lstrip().startswith("#"):
            comments.insert(0, lines[j])
            j -= 1
        first = lines[idx]
        if first.startswith("package "):
            package = first.split()[1]
            continue
        if first.startswith("import "):
            imports.append(first.strip())
            continue
        rules.append(_parse_rule(file, idx + 1, package, stmt, _annotations(comments)))
    return Module(file, package, tuple(imports), tuple(rules))


def _parse_rule(file: str, line: int, package: str, stmt: str, ann: dict[str, Any]) -> RuleDef:
    masked, depth = _mask(stmt)
    m = _RULE_NAME.match(stmt)
    name = m.group(1) if m else stmt.split()[0]
    is_default = stmt.startswith("default ")
    after_name = stmt[m.end() :] if m else ""
    is_function = after_name.startswith("(")
    if_pos = _find_top(masked, depth, r"\bif\b")
    else_pos = _find_top(masked, depth, r"\belse\b")
    body: str | None = None
    head = stmt
    if if_pos >= 0 and not is_default:
        head = stmt[:if_pos].strip()
        rest = stmt[if_pos + 2 :]
        rest_end = len(rest)
        if else_pos > if_pos:
            rest_end = else_pos - if_pos - 2
        rest = rest[:rest_end].strip()
        if rest.startswith("{"):
            rm, rd = _mask(rest)
            close = next(
                (k for k in range(1, len(rest)) if rm[k] == "}" and rd[k] == 0), len(rest)
            )
            body = rest[1:close]
        else:
            body = rest
    return RuleDef(
        file=file,
        line=line,
        package=package,
        name=name,
        head=head,
        body=body,
        is_default=is_default,
        is_function=is_function,
        has_else=else_pos >= 0,
        text=stmt,
        annotations=ann,
    )


def rule_value_expr(rule: RuleDef) -> str | None:
    """The value term of ``name := value`` (no body); None for other heads."""
    masked, depth = _mask(rule.head)
    pos = _find_top(masked, depth, r":=")
    if pos < 0:
        return None
    return rule.head[pos + 2 :].strip()


def is_identifier(text: str) -> bool:
    return bool(_IDENT.fullmatch(text))


def with_keyword_line(text: str) -> int | None:
    """Line of the first ``with`` keyword outside strings and comments, or None.

    rego-cpp 1.5.2 aborts the whole process (an uncaught C++ exception) when it builds
    some modules that use ``with``; callers refuse such modules before compiling.
    """
    masked, _ = _mask(text)
    m = re.search(r"(?<![\w.])with(?![\w])", masked)
    return None if m is None else masked.count("\n", 0, m.start()) + 1

