#!/usr/bin/env python3
"""make_tiny_hf.py: tiny random-weight transformers models built from configs, for the
recorder's tests (no download). Usage: make_tiny_hf.py OUTDIR FAMILY..., each FAMILY one
of llama, qwen2, qwen3, mistral, gemma2, gemma3, written to OUTDIR/FAMILY
(llama with a small trained tokenizer). Weights are seeded, so the same call gives
the same model. Scaled so attention is far from uniform (larger init), which makes a
wrong scale, mask or head mapping show in the outputs."""
import sys

import torch


def build(family):
    import transformers as T
    common = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  initializer_range=0.2, tie_word_embeddings=False)
    if family == "llama":  # with a tokenizer (see tokenizer()), so its vocabulary is 320
        return T.LlamaForCausalLM(T.LlamaConfig(**{**common, "vocab_size": 320}, head_dim=16))
    if family == "mistral":
        return T.MistralForCausalLM(T.MistralConfig(**common, head_dim=16, sliding_window=None))
    if family == "qwen2":
        return T.Qwen2ForCausalLM(T.Qwen2Config(**common))
    if family == "qwen3":
        return T.Qwen3ForCausalLM(T.Qwen3Config(**common, head_dim=16))
    if family == "gemma2":
        return T.Gemma2ForCausalLM(T.Gemma2Config(**common, head_dim=16, query_pre_attn_scalar=16,
                                                  sliding_window=8))
    if family == "gemma3":
        # three local layers with a window of 8 (shorter than the decode) and one global,
        # and a query_pre_attn_scalar that is not head_dim, so the scale has to come from it
        cfg = T.Gemma3TextConfig(**common, head_dim=16, query_pre_attn_scalar=24, sliding_window=8,
                                 layer_types=["sliding_attention"] * 3 + ["full_attention"])
        return T.Gemma3ForCausalLM(cfg)
    raise SystemExit(f"make_tiny_hf: unknown family {family}")


def tokenizer():
    """A byte-level BPE of < 320 entries trained on one arithmetic sentence: enough for the
    recorder's prompt, task and /text paths."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast
    t = ByteLevelBPETokenizer()
    t.train_from_iterator(["Q: What is 2 + 3? A: Let's think step by step. 2 + 3 = 5. The answer is 5."] * 10,
                          vocab_size=300, special_tokens=["<s>", "</s>"], show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=t._tokenizer, bos_token="<s>", eos_token="</s>")


def main():
    out = sys.argv[1]
    for family in sys.argv[2:]:
        torch.manual_seed(1234)
        model = build(family)
        with torch.no_grad():  # norm weights away from their init so a wrong (1 + w) shows
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.add_(0.3 * torch.randn_like(p))
        model.save_pretrained(f"{out}/{family}")
        if family == "llama":
            tokenizer().save_pretrained(f"{out}/{family}")


if __name__ == "__main__":
    main()
