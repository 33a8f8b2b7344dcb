"""A tiny random text-embedding model for the search tests, made offline: a one-layer BERT built
from a config (random weights, seeded) and a word-level tokenizer whose normaliser rewrites
chosen synonyms to one word (``automobile`` -> ``car``), so "a crimson automobile halts" and
"a red car stops" are the same tokens and get the same vector, while sharing no three letters:
a query only the vectors can find, by construction."""

from __future__ import annotations

from pathlib import Path

#: synonym -> the word the tokenizer reads instead
SYNONYMS = {"crimson": "red", "automobile": "car", "halts": "stops"}
WORDS = ("a", "the", "red", "blue", "green", "car", "kite", "dog", "cat", "stops", "flies",
         "sleeps", "runs", "on", "mat", "park", "people", "walking", "in", "sky", "sun", "rises",
         "over", "hill", "boat", "sails", "sea")


def make_tiny_embedder(folder: str | Path, *, hidden: int = 32, seed: int = 0) -> Path:
    """Write a transformers BERT folder (config, weights, tokenizer) into ``folder``."""
    import torch
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = Path(folder)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {w: i for i, w in enumerate(specials + list(WORDS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Lowercase()]
        + [normalizers.Replace(Regex(rf"\b{a}\b"), b) for a, b in SYNONYMS.items()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]),
                                                 ("[SEP]", vocab["[SEP]"])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=2 * hidden,
                        max_position_embeddings=64, type_vocab_size=1)
    BertModel(config).eval().save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
