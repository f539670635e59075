#!/usr/bin/env python3
"""Side by side: the figures of two builds' runs of the same benchmark steps.

    compare.py OLD_RESULTS NEW_RESULTS

Each results file holds one line per step, `KEY field=value field=value ...` (what
`scripts/bench.sh` collects from `zk-coffee-bench`). For every step in both files, every
numeric field whose value differs between the two is printed as a Markdown table row with
the ratio new / old; ratios more than 15 % away from 1 are marked. Fields equal in both (the
step's settings: orders, baristas, ...) are left out. Exit 0 whatever the figures say: noise
is for a person to judge.
"""

import sys


def load(path):
    steps = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, rest = line.strip().partition(" ")
            if not key:
                continue
            fields = {}
            for word in rest.split():
                name, eq, value = word.partition("=")
                if eq:
                    try:
                        fields[name] = float(value)
                    except ValueError:
                        pass
            steps[key] = fields
    return steps


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    old, new = load(sys.argv[1]), load(sys.argv[2])
    print("| step | figure | old | new | new / old |")
    print("| --- | --- | --- | --- | --- |")
    apart = 0
    rows = 0
    for key in new:
        if key not in old:
            continue
        for name, value in new[key].items():
            before = old[key].get(name)
            if before is None or before == value:
                continue
            rows += 1
            if before == 0:
                ratio = "—"
            else:
                r = value / before
                far = abs(r - 1) > 0.15
                apart += far
                ratio = f"{r:.2f}" + (" **(>15 %)**" if far else "")
            print(f"| {key} | {name} | {before:g} | {value:g} | {ratio} |")
    print()
    print(f"{rows} figures compared, {apart} more than 15 % apart.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
