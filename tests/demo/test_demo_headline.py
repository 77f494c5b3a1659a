"""The demo's terminal line per defence-matrix row."""

from compsec.demo.pipeline import _defence_lines


def test_defence_lines_show_every_defence_with_fp32_and_target_rates():
    document = {"headline": {"attack:content-injection": {
        "none": {"malicious": {"fp32": 0.0, "nf4": 0.875}}, "noise-auto": {"malicious": {"fp32": 0.0417, "nf4": 0.0}}}}}
    assert _defence_lines(document) == {"attack:content-injection": "(fp32/nf4) none 0%/88%, noise-auto 4%/0%"}
    assert _defence_lines({}) == {}
