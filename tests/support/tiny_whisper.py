"""A tiny random Whisper for faster-whisper, made offline: a byte-level tokenizer with Whisper's
special tokens, a two-layer ``WhisperForConditionalGeneration`` built from a config (random
weights), converted by CTranslate2's own ``TransformersConverter``. Its words are garbage; its
code path (features, decoding, word alignment, times) is faster-whisper's real one."""

from __future__ import annotations

import json
from pathlib import Path

from faster_whisper.tokenizer import _LANGUAGE_CODES

SPECIALS_BEFORE_LANGS = ["<|endoftext|>", "<|startoftranscript|>"]
SPECIALS_AFTER_LANGS = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                        "<|nospeech|>", "<|notimestamps|>"]


def _byte_alphabet() -> list[str]:
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


def make_tokenizer() -> tuple[object, dict[str, int]]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab: dict[str, int] = {c: i for i, c in enumerate(_byte_alphabet())}
    specials = (SPECIALS_BEFORE_LANGS + [f"<|{code}|>" for code in _LANGUAGE_CODES]
                + SPECIALS_AFTER_LANGS + [f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    for token in specials:
        vocab[token] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(t, special=True) for t in specials])
    return tok, vocab


def make_tiny_whisper(folder: str | Path) -> Path:
    """Write a CTranslate2 Whisper model folder (with ``tokenizer.json``) into ``folder``."""
    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import PreTrainedTokenizerFast, WhisperConfig, WhisperForConditionalGeneration

    folder = Path(folder)
    hf_dir, ct2_dir = folder / "hf", folder / "ct2"
    tok, vocab = make_tokenizer()
    ids = {name: vocab[name] for name in ("<|endoftext|>", "<|startoftranscript|>",
                                          "<|notimestamps|>")}
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=len(vocab), num_mel_bins=80, d_model=64, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128,
        decoder_ffn_dim=128, max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"],
        suppress_tokens=[], begin_suppress_tokens=[ids["<|endoftext|>"]])
    model = WhisperForConditionalGeneration(config).eval()
    gen = model.generation_config
    gen.suppress_tokens = []
    gen.begin_suppress_tokens = [ids["<|endoftext|>"]]
    gen.alignment_heads = [[0, 0], [0, 1]]
    gen.no_timestamps_token_id = ids["<|notimestamps|>"]
    model.save_pretrained(hf_dir)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    fast.save_pretrained(hf_dir)
    TransformersConverter(str(hf_dir), low_cpu_mem_usage=False).convert(str(ct2_dir),
                                                                       force=True)
    tok.save(str(ct2_dir / "tokenizer.json"))
    (ct2_dir / "preprocessor_config.json").write_text(json.dumps(
        {"feature_size": 80, "sampling_rate": 16000, "hop_length": 160, "chunk_length": 30,
         "n_fft": 400}))
    return ct2_dir
