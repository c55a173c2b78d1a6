"""Tag vocabularies: plain text files of concepts grouped under prompt templates (format in docs/enrichment.md).

```
[group]                      # a group of tags; "[group exclusive]": its tags compete (softmax), at most one wins
threshold = 0.26             # the group's default score threshold (cosine; a probability in an exclusive group)
template = a photo of a {}   # one or more prompt templates; a tag's text vector is the mean over them
dog                          # a tag: its name fills the templates
beach = a sandy beach        # a tag whose phrase differs from its name
```

Per-tag thresholds measured for a model (``<vocabulary>.thresholds.json``: ``{model_id: {tag: threshold}}``)
override the group default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings

from core.errors import DomainError
from search.embeddings import TOY_MODEL_ID

VOCABULARY_DIR = Path(__file__).resolve().parent / "vocabularies"


class VocabularyError(DomainError):
    code = "vocabulary"


@dataclass(frozen=True)
class TagGroup:
    name: str
    exclusive: bool
    threshold: float
    templates: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]  # (name, phrase)


@dataclass(frozen=True)
class Vocabulary:
    name: str
    groups: tuple[TagGroup, ...]
    thresholds: dict[str, dict[str, float]]  # model id -> tag -> measured threshold

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(name for group in self.groups for name, _ in group.tags)

    def prompts(self, group: TagGroup, phrase: str) -> list[str]:
        return [template.replace("{}", phrase) for template in group.templates]

    def tag_thresholds(self, *, model_id: str) -> list[float]:
        """One threshold per tag (in ``tags`` order): measured for ``model_id`` where known, else the group's."""
        measured = self.thresholds.get(model_id, {})
        return [measured.get(name, group.threshold) for group in self.groups for name, _ in group.tags]


def vocabulary_path(*, model_id: str) -> Path:
    """The vocabulary file ``SEMSEARCH_AUTOTAG_VOCABULARY`` names for ``model_id`` ("auto": toy or everyday)."""
    choice = settings.SEMSEARCH_AUTOTAG_VOCABULARY
    if choice == "auto":
        choice = "toy" if model_id == TOY_MODEL_ID else "everyday"
    path = Path(choice) if ("/" in choice or choice.endswith(".txt")) else VOCABULARY_DIR / f"{choice}.txt"
    if not path.is_file():
        raise VocabularyError(f"SEMSEARCH_AUTOTAG_VOCABULARY names {path}, which does not exist.")
    return path


@cache
def vocabulary_load(*, path: Path) -> Vocabulary:
    """Parse the vocabulary at ``path`` (cached per process); ``VocabularyError`` names the bad line."""
    groups: list[TagGroup] = []
    current: dict | None = None

    def close() -> None:
        if current is not None:
            if not current["templates"] or not current["tags"]:
                raise VocabularyError(f"{path}: group {current['name']!r} needs a template and at least one tag")
            groups.append(TagGroup(current["name"], current["exclusive"], current["threshold"],
                                   tuple(current["templates"]), tuple(current["tags"])))  # fmt: skip

    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            close()
            words = line[1:-1].split()
            current = {"name": words[0], "exclusive": "exclusive" in words[1:], "threshold": 0.0,
                       "templates": [], "tags": []}  # fmt: skip
            continue
        if current is None:
            raise VocabularyError(f"{path}:{number}: a tag or setting before the first [group]")
        key, sep, value = (part.strip() for part in line.partition("="))
        if sep and key == "threshold":
            current["threshold"] = float(value)
        elif sep and key == "template":
            if "{}" not in value:
                raise VocabularyError(f"{path}:{number}: a template needs {{}} where the tag goes")
            current["templates"].append(value)
        else:
            current["tags"].append((key.lower(), value if sep else key))
    close()
    names = [name for group in groups for name, _ in group.tags]
    if len(names) != len(set(names)):
        raise VocabularyError(f"{path}: a tag appears twice")
    thresholds_file = path.with_suffix(".thresholds.json")
    thresholds = json.loads(thresholds_file.read_text()) if thresholds_file.is_file() else {}
    return Vocabulary(name=path.stem, groups=tuple(groups), thresholds=thresholds)
