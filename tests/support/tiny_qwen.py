"""A tiny, randomly initialised Qwen3-VL saved to disk, for tests that must run the real code.

Everything is built from real transformers classes (config, model, tokenizer, image and video
processors, ``Qwen3VLProcessor``) and written with ``save_pretrained``, so the backend loads it
with ``from_pretrained`` exactly as it loads a downloaded checkpoint. About 1 MB, a few seconds
to build on two CPU cores, a generate call in well under a second. Nothing is downloaded.

Usage::

    from tiny_qwen import build_tiny_qwen3vl   # tests/support is on the path (pyproject)
    model_dir = build_tiny_qwen3vl(tmp_path / "tiny-qwen3vl")
"""

from __future__ import annotations

from pathlib import Path

SEED = 1234

#: Special tokens of the Qwen chat format, in the order they get ids after the 256 byte tokens.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: A Qwen-style chat template (same structure as the Qwen3-VL one: system turn, user content
#: items that are images, videos or text, assistant turns, optional generation prompt).
CHAT_TEMPLATE = (
    "{%- set image_count = namespace(value=0) -%}"
    "{%- set video_count = namespace(value=0) -%}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' or 'image' in item or 'image_url' in item -%}"
    "{%- set image_count.value = image_count.value + 1 -%}"
    "{%- if add_vision_id is defined and add_vision_id -%}"
    "Picture {{ image_count.value }}: {% endif -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif item['type'] == 'video' or 'video' in item -%}"
    "{%- set video_count.value = video_count.value + 1 -%}"
    "{%- if add_vision_id is defined and add_vision_id -%}"
    "Video {{ video_count.value }}: {% endif -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in item -%}"
    "{{- item['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)


def build_tokenizer():  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer (256 byte tokens, no merges) plus the Qwen special tokens.

    Byte level means any text (digits, English, Chinese, emoji) round-trips exactly.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=32768,
        padding_side="left",
    )
    tokenizer.add_special_tokens({"pad_token": "<|endoftext|>"})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_config(tokenizer):  # -> Qwen3VLConfig
    """The tiny Qwen3-VL config of DESIGN.md, special token ids taken from ``tokenizer``."""
    from transformers import Qwen3VLConfig

    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                            "mrope_section": [4, 2, 2], "mrope_interleaved": True},
        "pad_token_id": ids["<|endoftext|>"],
        "bos_token_id": ids["<|im_start|>"],
        "eos_token_id": ids["<|im_end|>"],
    }
    vision_config = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": 16,
        "temporal_patch_size": 2,
        "spatial_merge_size": 2,
        "out_hidden_size": 64,
        "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0, 1],
    }
    return Qwen3VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build_processor(tokenizer):  # -> Qwen3VLProcessor
    """Image processor + video processor + tokenizer, configured like the real checkpoint."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(
        patch_size=16, temporal_patch_size=2, merge_size=2,
        size={"shortest_edge": 32 * 32, "longest_edge": 32 * 32 * 64},
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen3VLVideoProcessor(
        patch_size=16, temporal_patch_size=2, merge_size=2,
        size={"shortest_edge": 32 * 32 * 2, "longest_edge": 32 * 32 * 64 * 16},
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
        fps=2, min_frames=2, max_frames=64,
    )
    return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                            video_processor=video_processor, chat_template=CHAT_TEMPLATE)


def build_tiny_qwen3vl(directory: Path, *, seed: int = SEED) -> Path:
    """Write a tiny random Qwen3-VL checkpoint (model, tokenizer, processors) to ``directory``.

    Deterministic for a given ``seed``. Returns ``directory``. Imports torch and transformers.
    """
    import torch
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = build_config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config = GenerationConfig(
        eos_token_id=[eos, pad], pad_token_id=pad, do_sample=False
    )
    model.save_pretrained(directory)
    build_processor(tokenizer).save_pretrained(directory)
    return directory


if __name__ == "__main__":  # pragma: no cover - manual use: python tests/support/tiny_qwen.py DIR
    import sys

    print(build_tiny_qwen3vl(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-qwen3vl")))
