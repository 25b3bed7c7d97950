"""Every UI text (public, subscribe, manage, admin pages; every mail) has its English, through `translate`.

The texts are collected from the sources, not listed by hand: `_(...)` calls in the Jinja templates (their
AST), `translate(...)`, `t(...)` and `_(...)` calls in feedsvc's Python modules (Python's `ast`), and the
label tables those calls look up. A call whose text the collector cannot see (neither a literal, nor a
loop over literals, nor a module-level table) fails the check: write the text where it can be seen.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes
from support import ROOT

from feedsvc.i18n import translate

TEMPLATES = ROOT / "templates"
PACKAGE = ROOT / "feedsvc"
TRANSLATORS = {"_", "t", "translate"}
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Text:
    """A text to translate and where it was found (file:line)."""

    text: str
    where: str


# --- templates --------------------------------------------------------------------------------


def template_texts(path: Path) -> Iterator[Text | str]:
    """The texts of `_(...)` calls in one template; a str (a location) for a call that cannot be resolved."""
    tree = jinja2.Environment(autoescape=True).parse(path.read_text(encoding="utf-8"))
    name = path.relative_to(ROOT)
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name == "_"):
            continue
        where = f"{name}:{call.lineno}"
        argument = call.args[0] if call.args else None
        if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
            yield Text(argument.value, where)
        elif isinstance(argument, nodes.Name) and (looped := _loop_values(tree, argument.name)):
            yield from (Text(value, where) for value in looped)
        else:
            yield where


def _loop_values(tree: nodes.Template, name: str) -> list[str]:
    """The literal values `name` takes in a `{% for %}` over a literal list (of tuples), e.g. the admin buttons."""
    values: list[str] = []
    for loop in tree.find_all(nodes.For):
        targets = loop.target.items if isinstance(loop.target, nodes.Tuple) else [loop.target]
        names = [t.name if isinstance(t, nodes.Name) else None for t in targets]
        if name not in names or not isinstance(loop.iter, nodes.List | nodes.Tuple):
            continue
        position = names.index(name)
        for item in loop.iter.items:
            element = item.items[position] if isinstance(item, nodes.Tuple) else item
            if isinstance(element, nodes.Const) and isinstance(element.value, str):
                values.append(element.value)
    return values


# --- Python modules -----------------------------------------------------------------------------


def module_texts(path: Path) -> Iterator[Text | str]:
    """The texts given to translate/t/_ in one module; a str (a location) for a call that cannot be resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = path.relative_to(ROOT)
    tables = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict | ast.List | ast.Tuple)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for scope in ast.walk(tree):
        if not isinstance(scope, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        parameters = (
            {a.arg for a in ast.walk(scope.args) if isinstance(a, ast.arg)}
            if not isinstance(scope, ast.Module)
            else set()
        )
        for call in _calls(scope):
            where = f"{name}:{call.lineno}"
            argument = call.args[0] if call.args else None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                yield Text(argument.value, where)
            elif isinstance(argument, ast.Name) and argument.id in parameters:
                continue  # a wrapper passing its caller's text on (web.language.t, the templates' `_`)
            elif texts := _table_values(argument, tables):
                yield from (Text(text, where) for text in texts)
            else:
                yield where


def _calls(scope: ast.AST) -> Iterator[ast.Call]:
    """The translator calls directly in `scope` (not in functions nested in it: they are scopes of their own)."""
    body = scope.body if isinstance(scope.body, list) else [scope.body]  # type: ignore[attr-defined]
    pending = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Call):
            callee = node.func
            called = (
                callee.id if isinstance(callee, ast.Name) else callee.attr if isinstance(callee, ast.Attribute) else ""
            )
            if called in TRANSLATORS:
                yield node
        pending.extend(ast.iter_child_nodes(node))


def _table_values(argument: ast.AST | None, tables: dict[str, ast.expr]) -> list[str]:
    """The literal texts of the module-level tables `argument` reads (`STATE_LABELS.get(state, state)`)."""
    if argument is None:
        return []
    texts: list[str] = []
    for node in ast.walk(argument):
        table = tables.get(node.id) if isinstance(node, ast.Name) else None
        values = table.values if isinstance(table, ast.Dict) else getattr(table, "elts", [])
        texts += [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return texts


# --- the check --------------------------------------------------------------------------------

AREAS = {
    "public and subscription pages": sorted((TEMPLATES / "web").glob("*.html")),
    "admin pages": sorted((TEMPLATES / "web" / "admin").glob("*.html")),
    "mail": sorted(p for p in (TEMPLATES / "email").iterdir() if p.suffix in (".html", ".txt")),
    "web code": sorted((PACKAGE / "web").glob("*.py")),
    "mail code": sorted((PACKAGE / "mail").glob("*.py")),
    "other code": sorted(
        p for p in PACKAGE.rglob("*.py") if p.parent.name not in ("web", "mail") and "migrations" not in p.parts
    ),
}
AT_LEAST = {"public and subscription pages": 80, "admin pages": 50, "mail": 6, "web code": 12}  # today: 91, 57, 8, 15


def collect(area: str) -> tuple[list[Text], list[str]]:
    """(texts, unresolved call locations) of one area."""
    found: list[Text | str] = []
    for path in AREAS[area]:
        found += template_texts(path) if path.suffix != ".py" else module_texts(path)
    return [f for f in found if isinstance(f, Text)], [f for f in found if isinstance(f, str)]


@pytest.mark.parametrize("area", list(AREAS))
def test_every_text_has_english(area: str) -> None:
    texts, unresolved = collect(area)
    assert unresolved == [], "translated texts the check cannot see; pass a literal"
    chinese = {t.text: t.where for t in texts if CJK.search(t.text)}
    assert len(chinese) >= AT_LEAST.get(area, 0), f"only {len(chinese)} texts found in {area}: is the collector blind?"
    english = {text: translate(text, "en") for text in chinese}
    assert {f"{where}: {text}" for text, where in chinese.items() if english[text] == text} == set()
    assert {f"{chinese[t]}: {e}" for t, e in english.items() if CJK.search(e)} == set(), "English with Chinese in it"
    assert {
        f"{chinese[t]}: {t} → {e}"
        for t, e in english.items()
        if set(PLACEHOLDER.findall(e)) != set(PLACEHOLDER.findall(t))
    } == set(), "English whose {placeholders} differ"


def test_the_source_language_is_shown_as_written() -> None:
    texts, _ = collect("public and subscription pages")
    assert all(translate(t.text, "zh-CN") == t.text for t in texts)


def test_every_section_has_an_english_name(publication) -> None:  # type: ignore[no-untyped-def]
    assert publication.name_en
    assert [s.slug for s in publication.sections if not s.name_en] == []
