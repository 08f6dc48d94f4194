"""A dispatcher process for the concurrency test: claims until the queue is empty, prints the ids."""
import json
import sys

from calls.queue import claim_due
from models import open_database


def main(url: str, worker: str, batch: int) -> None:
    open_database(url)
    claimed: list[str] = []
    empty_polls = 0
    while empty_polls < 3:
        got = claim_due(batch, worker)
        claimed += [c.id for c in got]
        empty_polls = 0 if got else empty_polls + 1
    print(json.dumps(claimed))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
