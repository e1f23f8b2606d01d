"""fusion.errors: the public names are pinned, and the tree in the module docstring is the real hierarchy."""

from __future__ import annotations

import fusion.errors
from fusion.errors import FusionError

PUBLIC = ["FusionError", "ConfigError", "DataValidationError", "SourceError", "FeatureSpecError",
          "BundleIntegrityError", "MissingToolError", "EventStoreError", "EventPublishError"]


def drawn_tree(doc: str) -> dict[str, str | None]:
    "class name -> parent name, read from the box-drawing tree in `doc` (the parent is the nearest line above, less indented)."
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []  # (column of the name, name) of the current branch
    for line in doc.splitlines():
        stripped = line.lstrip("│├└─ ")
        name = stripped.split(" ", 1)[0]
        if not name.endswith("Error"):
            continue
        col = len(line) - len(stripped)
        while stack and stack[-1][0] >= col:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((col, name))
    return parents


def test_all_is_pinned():
    assert fusion.errors.__all__ == PUBLIC


def test_every_public_name_is_an_error_class():
    for name in PUBLIC:
        cls = getattr(fusion.errors, name)
        assert isinstance(cls, type) and issubclass(cls, FusionError), name


def test_the_docstring_tree_is_the_hierarchy():
    drawn = drawn_tree(fusion.errors.__doc__)
    assert sorted(drawn) == sorted(PUBLIC)
    for name, parent in drawn.items():
        bases = [b.__name__ for b in getattr(fusion.errors, name).__bases__]
        assert bases[0] == (parent or "Exception"), f"{name}: drawn under {parent}, its bases are {bases}"


def test_drawn_tree_reads_nesting():
    assert drawn_tree("AError\n├── BError  x\n│   └── CError  y\n└── DError\n") == {
        "AError": None, "BError": "AError", "CError": "BError", "DError": "AError"}
