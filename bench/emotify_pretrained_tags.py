"""Share of Emotify songs per genre with a tag among a pretrained model's top 3 (issue 21).

Reads what ``encore predict pretrained:NAME /work/shared/data/emotify/audio`` wrote
(JSON Lines, tags in descending probability, the genre is the song's folder) and prints,
per genre, the share of songs with ``--tag`` among the top 3 and the most common top tag.

    encore predict pretrained:musicnn-mtt ../shared/data/emotify/audio > mtt.jsonl
    python bench/emotify_pretrained_tags.py mtt.jsonl --tag classical
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", type=Path, help="JSON Lines from `encore predict`")
    parser.add_argument("--tag", default="classical")
    parser.add_argument("--top", type=int, default=3)
    args = parser.parse_args()
    by_genre: dict[str, list[list[str]]] = collections.defaultdict(list)
    for line in args.predictions.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        tags = sorted(row["tags"], key=row["tags"].get, reverse=True)
        by_genre[Path(row["path"]).parent.name].append(tags)
    print(f"{args.predictions.name}: share of songs with {args.tag!r} among the top {args.top} tags")
    for genre, rows in sorted(by_genre.items()):
        share = sum(args.tag in tags[: args.top] for tags in rows) / len(rows)
        common = collections.Counter(tags[0] for tags in rows).most_common(3)
        print(f"  {genre:<11} {share:6.1%} of {len(rows):3d} songs; top tag most often: {common}")


if __name__ == "__main__":
    main()
