"""A cassette file: read with the safe YAML loader, the provenance it carries (who answered: Azure or the rai-lab
stand-in), and its path as a learner should read it."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from vcr.serializers import yamlserializer

from rai_lab import paths
from rai_lab.errors import CassetteError
from rai_lab.messages import say

SOURCE_STANDIN = "rai-lab-standin"
SOURCE_AZURE = "azure-openai"


def display_path(path: str | os.PathLike) -> str:
    """A path as a learner should read it: relative to the kit or the working folder when inside."""
    path = Path(path).resolve()
    for base in (paths.ROOT, Path.cwd()):
        try:
            return str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)


def describe_source(sources: set[str]) -> dict:
    if sources == {SOURCE_STANDIN}:
        return {
            "source": SOURCE_STANDIN,
            "note": "Synthetic answers from the rai-lab Azure OpenAI stand-in server, "
            "NOT a real model's output. Re-record from a real deployment with `rai-lab record`.",
        }
    if SOURCE_STANDIN in sources:
        return {"source": "mixed", "note": "Some answers come from the rai-lab stand-in (synthetic)."}
    return {"source": SOURCE_AZURE, "note": "Answers recorded from an Azure OpenAI deployment."}


def provenance_of(cassette) -> dict:
    """A loaded cassette's provenance (vcrpy's metadata), or {} when it has none."""
    from vcr.errors import MissingMetadataError

    try:
        return dict(cassette.get_metadata("provenance", {}) or {})
    except MissingMetadataError:  # a replayed cassette is write-protected: no default is stored
        return {}


def load_safely(path: str | os.PathLike) -> dict:
    """Parse a cassette file with the safe YAML loader; CassetteError when it is not a cassette."""
    path = Path(path)
    if not path.is_file():
        raise CassetteError(say("cassette_not_found", None, cassette=display_path(path)))
    try:
        data = yamlserializer.deserialize(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
            raise ValueError("no 'interactions' list")
        for item in data["interactions"]:
            if not isinstance(item, dict) or "request" not in item or "response" not in item:
                raise ValueError("an interaction without request or response")
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0][:200]
        raise CassetteError(say("cassette_unreadable", None, cassette=display_path(path), reason=reason)) from err
    return data


def provenance(path: str | os.PathLike) -> dict:
    """The provenance a cassette carries (empty when it has none)."""
    data = load_safely(path)
    return dict((data.get("metadata") or {}).get("provenance") or {})


def provenance_line(prov: dict, lang: str) -> str:
    recorded_at = str(prov.get("recorded_at", "?"))[:10]
    if prov.get("source") == SOURCE_STANDIN:
        return say("provenance_standin", lang, recorded_at=recorded_at)
    if prov.get("source") in (SOURCE_AZURE, "mixed"):
        return say("provenance_azure", lang, deployment=prov.get("deployment", "?"), recorded_at=recorded_at)
    return say("provenance_unknown", lang)
