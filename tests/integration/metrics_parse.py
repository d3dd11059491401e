#!/usr/bin/python3
"""metrics_parse.py - the real parsers for test_metrics.c.

  metrics_parse.py prom < exposition   parses with prometheus_client's text parser (the one
                                       Prometheus' Python client ships) and prints every
                                       sample as 'name{k="v",...} value', labels sorted;
                                       also checks each histogram (buckets ascending and
                                       cumulative, +Inf == _count)
  metrics_parse.py json < log          every line must be one JSON object with ts (RFC 3339
                                       UTC), level and msg; prints each msg as
                                       'level<TAB>msg'

Exit status 0, 1 when the input does not parse or a check fails (message on stderr), 2 when
the parser is not installed (Debian: python3-prometheus-client).
"""
import json
import math
import re
import sys


def prom(text):
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError as e:
        print("metrics_parse: %s (apt-get install python3-prometheus-client)" % e,
              file=sys.stderr)
        return 2
    out = []
    for fam in text_string_to_metric_families(text):
        if not fam.name.startswith("dshm_server_"):
            raise ValueError("family outside dshm_server_: %s" % fam.name)
        buckets = {}
        for s in fam.samples:
            labels = ",".join('%s="%s"' % (k, s.labels[k]) for k in sorted(s.labels))
            out.append("%s%s %r" % (s.name, "{%s}" % labels if labels else "", float(s.value)))
            if fam.type == "histogram":
                key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                h = buckets.setdefault(key, {"b": [], "count": None})
                if s.name.endswith("_bucket"):
                    h["b"].append((float(s.labels["le"]), s.value))
                elif s.name.endswith("_count"):
                    h["count"] = s.value
        for key, h in buckets.items():
            les = [le for le, _ in h["b"]]
            vals = [v for _, v in h["b"]]
            if les != sorted(les) or not les or les[-1] != math.inf:
                raise ValueError("%s %s: bad le order %s" % (fam.name, key, les))
            if vals != sorted(vals):
                raise ValueError("%s %s: buckets not cumulative" % (fam.name, key))
            if vals[-1] != h["count"]:
                raise ValueError("%s %s: +Inf %s != count %s" % (fam.name, key, vals[-1],
                                                                 h["count"]))
    print("\n".join(out))
    return 0


TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def jsonlines(text):
    for n, line in enumerate(text.splitlines(), 1):
        o = json.loads(line)
        if not isinstance(o, dict) or not TS.match(o.get("ts", "")) or \
                o.get("level") not in ("error", "warn", "info", "debug") or \
                not isinstance(o.get("msg"), str):
            raise ValueError("line %d: %r" % (n, line))
        if "node" in o and not o["msg"].startswith("node %d" % o["node"]):
            raise ValueError("line %d: node field %r" % (n, line))
        print("%s\t%s" % (o["level"], o["msg"]))
    return 0


def main():
    text = sys.stdin.buffer.read().decode("utf-8")
    try:
        return prom(text) if sys.argv[1:] == ["prom"] else jsonlines(text)
    except Exception as e:  # any parse error is the test's failure
        print("metrics_parse: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
