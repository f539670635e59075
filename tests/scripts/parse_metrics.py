#!/usr/bin/python3
"""Reads an OpenMetrics text page on stdin with the official Prometheus parser.

    parse_metrics.py            prints the page's metric families as one JSON document:
                                {"families": [{"name", "type", "unit", "help",
                                               "samples": [{"name", "labels", "value"}]}]}
    parse_metrics.py --classic  prints the same families in Prometheus' classic text format
                                (the official client's writer), which `promtool check metrics`
                                reads: promtool 2.42 does not read OpenMetrics.

A page the parser rejects (not OpenMetrics, no `# EOF`, a family twice, a histogram without
its `+Inf` bucket...) exits 1 with the parser's message on stderr. Uses Debian's
python3-prometheus-client, so run it with /usr/bin/python3.
"""

import json
import math
import sys

try:
    from prometheus_client.exposition import generate_latest
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError as e:
    sys.exit(f"parse_metrics.py needs Debian's python3-prometheus-client under /usr/bin/python3: {e}")


class Families:
    """What generate_latest asks of a registry: something to collect from."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def value(v):
    # JSON has no NaN or infinities: write them as the strings Prometheus uses.
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


def main():
    classic = sys.argv[1:] == ["--classic"]
    if sys.argv[1:] not in ([], ["--classic"]):
        print("usage: parse_metrics.py [--classic] < page", file=sys.stderr)
        return 2
    try:
        families = list(text_string_to_metric_families(sys.stdin.read()))
    except Exception as e:  # the parser raises ValueError and others on a bad page
        print(f"not a valid OpenMetrics page: {e}", file=sys.stderr)
        return 1
    if classic:
        sys.stdout.write(generate_latest(Families(families)).decode("utf-8"))
        return 0
    out = []
    for f in families:
        samples = [{"name": s.name, "labels": dict(s.labels), "value": value(s.value)} for s in f.samples]
        out.append({"name": f.name, "type": f.type, "unit": f.unit, "help": f.documentation, "samples": samples})
    json.dump({"families": out}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
