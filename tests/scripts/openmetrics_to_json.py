#!/usr/bin/python3
"""Reads an OpenMetrics text exposition on stdin and prints it as one JSON document.

The parser is the official Prometheus one (Debian's python3-prometheus-client,
prometheus_client.openmetrics.parser), so a page it refuses is not valid OpenMetrics.
Output: a list of families, each {"name", "type", "unit", "help", "samples"}, each sample
{"name", "labels", "value"} with the value as a string (Python's repr of the float, so that
NaN and infinities survive JSON). On a parse error: one line on stderr, exit 1.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    try:
        families = [
            {
                "name": f.name,
                "type": f.type,
                "unit": f.unit,
                "help": f.documentation,
                "samples": [
                    {"name": s.name, "labels": dict(s.labels), "value": repr(float(s.value))}
                    for s in f.samples
                ],
            }
            for f in text_string_to_metric_families(text)
        ]
    except Exception as e:  # the parser raises ValueError and others for bad input
        print(f"not valid OpenMetrics: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    json.dump(families, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
