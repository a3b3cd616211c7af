"""A prepared corpus as the commands that read it see it: its manifest, data-bin, references, detokeniser.

A directory made by a prepare command (pipeline.py) holds prepared.json; PreparedCorpus reads it and
answers what evaluation, the demo and the study ask of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .io import read_lines
from .pipeline import load_manifest
from .text import moses_detokenize


@dataclass
class PreparedCorpus:
    """What evaluation needs to know about a directory made by a prepare script."""

    root: Path
    manifest: dict

    @classmethod
    def load(cls, root: Path) -> "PreparedCorpus":
        return cls(Path(root), load_manifest(root))

    @property
    def config(self) -> dict:
        return self.manifest["config"]

    @property
    def data_bin(self) -> Path:
        return self.root / self.manifest["data_bin"]

    def references(self, subset: str) -> list[str]:
        known = ["valid", *self.manifest["test_sets"]]
        if subset not in known:
            raise ValueError(f"subset must be one of {known}, got {subset!r}")
        return read_lines(self.root / self.manifest["references"] / f"{subset}.{self.config['target_lang']}")

    def postprocess(self, hypotheses: list[str]) -> list[str]:
        """Undo the tokenisation the corpus went through (sentencepiece is removed by generate)."""
        if self.config["tokenizer"] == "moses":
            return moses_detokenize(hypotheses, self.config["target_lang"])
        return hypotheses
