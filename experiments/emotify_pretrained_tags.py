"""Share of Emotify songs per genre with a tag among a pretrained model's top 3 (issue 21).

Reads what ``encore predict pretrained:NAME /work/shared/data/emotify/audio`` wrote
(JSON Lines, tags in descending probability, the genre is the song's folder) and prints,
per genre, the share of songs with each ``--tag`` among the top 3 and the most common top tag.

    encore predict pretrained:musicnn-mtt ../shared/data/emotify/audio > mtt.jsonl
    python experiments/emotify_pretrained_tags.py mtt.jsonl --tag classical
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", type=Path, help="JSON Lines from `encore predict`")
    parser.add_argument("--tag", action="append", help="tag to look for (repeatable; default: classical)")
    parser.add_argument("--top", type=int, default=3)
    args = parser.parse_args()
    by_genre: dict[str, list[list[str]]] = collections.defaultdict(list)
    for line in args.predictions.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        tags = sorted(row["tags"], key=row["tags"].get, reverse=True)
        by_genre[Path(row["path"]).parent.name].append(tags)
    wanted = args.tag or ["classical"]
    print(f"{args.predictions.name}: share of songs with each tag among the top {args.top} tags")
    print(f"  {'genre':<11} {'songs':>5} " + " ".join(f"{tag:>11}" for tag in wanted) + "  top tag most often")
    for genre, rows in sorted(by_genre.items()):
        shares = [sum(tag in tags[: args.top] for tags in rows) / len(rows) for tag in wanted]
        common = collections.Counter(tags[0] for tags in rows).most_common(3)
        print(f"  {genre:<11} {len(rows):5d} " + " ".join(f"{share:11.0%}" for share in shares) + f"  {common}")


if __name__ == "__main__":
    main()
