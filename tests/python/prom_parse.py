"""Parses Prometheus text exposition from stdin with the Prometheus project's own parser
(prometheus_client) and prints every sample as JSON: the independent check of the
engine's /metrics endpoint."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
json.dump(samples, sys.stdout)
