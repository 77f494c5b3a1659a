"""The demo's finding histograms: which findings are drawn, and that the plots are real PNGs of real tensors."""

import base64

from compsec.demo.histograms import finding_histograms, strongest_findings
from compsec.demo.index import defence_table


def _finding(tensor, fmt="nf4", p=1e-3, severity="suspicious"):
    return {"tensor": tensor, "format": fmt, "detector": "edge-mass", "severity": severity, "score": 1.0,
            "p_value": p, "explanation": ""}


def test_strongest_findings_orders_by_p_value_and_drops_duplicates_and_unknown_formats():
    scan = {"findings": [_finding("a", p=1e-2), _finding("b", p=1e-9), _finding("b", p=1e-8),
                         _finding("c", fmt="no-such-format", p=1e-20), _finding("d", severity="note", p=0.0),
                         _finding("b", fmt="fp4", p=1e-5)]}
    chosen = strongest_findings(scan, limit=3)
    assert [(f["tensor"], f["format"]) for f in chosen] == [("b", "nf4"), ("b", "fp4"), ("a", "nf4")]


def test_histograms_are_png_plots_of_the_named_tensor(tiny_model_dir):
    scan = {"findings": [_finding("model.layers.0.mlp.up_proj.weight"), _finding("not.a.tensor")]}
    plots = finding_histograms(scan, tiny_model_dir, tiny_model_dir)
    assert [p["finding"]["tensor"] for p in plots] == ["model.layers.0.mlp.up_proj.weight"]
    assert base64.b64decode(plots[0]["png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert finding_histograms({"findings": []}, tiny_model_dir, tiny_model_dir) == []


def test_defence_table_shows_every_rate_and_marks_missing_cells():
    document = {"defences": ["none", "noise-auto", "clip"], "metric": {"content-injection": "keyword_rate"},
                "rows": {"attack:content-injection": {"scenario": "content-injection"}},
                "cells": {"attack:content-injection": {
                    "none": {"malicious": {"fp32": 0.0, "nf4": 0.91}, "utility_change_points": {}},
                    "noise-auto": {"malicious": {"fp32": 0.0, "nf4": 0.0},
                                   "utility_change_points": {"instruction_accuracy": -1.25}}}}}
    table = defence_table(document)
    label, metric, cells = table["rows"][0]
    assert (label, metric) == ("attack:content-injection", "keyword_rate")
    assert cells == ["fp32 0 % · nf4 91 %", "fp32 0 % · nf4 0 % (utility -1.2 pts)", "–"]
