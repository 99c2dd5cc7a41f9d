"""What the free words of ``validate``, ``plan`` and ``run`` are: steps, overrides or recipes.

The three never look alike, so no word is ambiguous:

- an override has ``=`` or starts with ``~`` or ``+`` (Hydra's grammar);
- a recipe ends in ``.yaml`` or ``.yml`` (what ``-f`` names);
- a step is anything else — step names cannot contain ``.`` or ``=`` (``STEP_NAME``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlbuild.errors import UsageError

RECIPE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Words:
    steps: list[str]
    overrides: list[str]
    recipes: list[Path]


def is_override(word: str) -> bool:
    return "=" in word or word.startswith(("~", "+"))


def split_words(words: list[str]) -> Words:
    """Sort command-line words into steps, overrides and recipe files (which must exist)."""
    steps: list[str] = []
    overrides: list[str] = []
    recipes: list[Path] = []
    for word in words:
        if is_override(word):
            overrides.append(word)
        elif word.lower().endswith(RECIPE_SUFFIXES):
            path = Path(word)
            if not path.is_file():
                raise UsageError(
                    f"{word}: no such recipe file (a word ending in .yaml or .yml names the "
                    "recipe; an override is KEY=VALUE, +KEY=VALUE or ~KEY)"
                )
            recipes.append(path)
        else:
            steps.append(word)
    return Words(steps, overrides, recipes)


def one_recipe(words: Words, file_option: str | None) -> Path | None:
    """The recipe a command on one workspace uses: ``-f FILE`` or one recipe word, or None (the
    nearest ``ml.yaml``)."""
    named = [*([Path(file_option)] if file_option else []), *words.recipes]
    distinct = {p.resolve() for p in named}
    if len(distinct) > 1:
        shown = ", ".join(str(p) for p in named)
        raise UsageError(f"more than one recipe named ({shown}); this command runs one at a time")
    return named[0] if named else None
