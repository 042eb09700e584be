"""MkDocs hook: the configuration reference, generated from the config dataclasses' field docstrings.

    make docs        # mkdocs build --strict; this hook fills docs/reference/configuration.md

A page's `<!-- run keys -->` marker becomes the table of a run's keys (`rnnbench.config.Config`), and
`<!-- sweep keys -->` the table of a sweep file's own sections (`rnnbench.sweep.definition.SweepDefinition`).
Each row is a field: its key, its default and its docstring, so that the reference cannot drift from the code.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing

MARKERS = {"<!-- run keys -->": "rnnbench.config:Config", "<!-- sweep keys -->": "rnnbench.sweep.definition:SweepDefinition"}


def field_docstrings(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (the string literal that follows its annotated assignment)."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, following in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def shown(value) -> str:
    """A default as it is written in a YAML file or a key=value override."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ", ".join(shown(item) for item in value) + "]"
    return str(value)


def rows(root: type, skip: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """(key, default, meaning) of every field of every section of `root`, in the order the code declares them.

    Raises:
        ValueError: a field without a docstring (the reference would have a hole).
    """
    hints = typing.get_type_hints(root)
    table = []
    for section in dataclasses.fields(root):
        kind = hints[section.name]
        if section.name in skip or not dataclasses.is_dataclass(kind):
            continue
        docs, defaults = field_docstrings(kind), kind()  # type: ignore[operator]
        for field in dataclasses.fields(kind):
            if field.name not in docs:
                raise ValueError(f"{kind.__name__}.{field.name} has no docstring: the configuration reference needs one")
            table.append((f"{section.name}.{field.name}", shown(getattr(defaults, field.name)), docs[field.name]))
    return table


def markdown(table: list[tuple[str, str, str]]) -> str:
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{key}` | `{default}` | {meaning.replace('|', '&#124;')} |" for key, default, meaning in table]
    return "\n".join(lines)


def _resolve(target: str) -> type:
    import importlib

    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def on_page_markdown(page_markdown: str, **_) -> str:
    """MkDocs' hook: each marker replaced by its table."""
    for marker, target in MARKERS.items():
        if marker in page_markdown:
            skip = ("data", "train") if target.endswith("SweepDefinition") else ()  # a run's sections: the other table
            page_markdown = page_markdown.replace(marker, markdown(rows(_resolve(target), skip)))
    return page_markdown
