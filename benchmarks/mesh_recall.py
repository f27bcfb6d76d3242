"""Recall of the entity extractor against PubMedQA's MeSH annotations: for each abstract, the
fraction of its MeSH headings found among the entities extracted from its text (normalised
strings; a heading counts if it or its singular form is extracted).

    python benchmarks/mesh_recall.py [--extractor auto] [--data ../shared/data/pubmedqa/ori_pqal.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from medr3_env.corpora import load_corpus

from medr3_env.entities import load_extractor, normalise_entity

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa" / "ori_pqal.json"
)


def _variants(heading: str) -> set[str]:
    name = normalise_entity(heading)
    forms = {name}
    if name.endswith("es"):
        forms.add(name[:-2])
    if name.endswith("s"):
        forms.add(name[:-1])
    return forms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--extractor", default="auto")
    parser.add_argument("--out", type=Path, default=Path("runs/mesh_recall.json"))
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"PubMedQA file not found: {args.data}")
    extractor = load_extractor(args.extractor)
    documents = list(load_corpus(f"pubmedqa:{args.data}"))
    per_doc, found_total, heading_total = [], 0, 0
    for doc, sentences in zip(
        documents, extractor.extract_sentences(d.content for d in documents), strict=True
    ):
        entities = {e for sentence in sentences for e in sentence}
        headings = [h for h in doc.annotations if h.strip()]
        found = sum(bool(_variants(h) & entities) for h in headings)
        if headings:
            per_doc.append(found / len(headings))
        found_total += found
        heading_total += len(headings)
    result = {
        "extractor": extractor.name,
        "abstracts": len(per_doc),
        "mean_recall_per_abstract": statistics.mean(per_doc),
        "micro_recall": found_total / heading_total,
        "headings": heading_total,
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
