#!/usr/bin/env python3
"""gguf_to_hf.py MODEL.gguf OUTDIR: a Gemma 3 GGUF dequantized (the `gguf` package) into a
transformers Gemma3ForCausalLM directory (config.json + model.safetensors, float32), so that
traces/record_hf.py can record the same model raasbench's C engine decodes.

transformers' own GGUF loader gives garbage for Gemma 3, hence this. The conventions that
differ between the two formats:
- Norm weights: Gemma's RMSNorm multiplies by (1 + w); llama.cpp's converter stores 1 + w
  (convert_hf_to_gguf.py, Gemma3Model: `data_torch + 1` for every norm.weight), and
  raasbench's engine multiplies by the stored value (harness/model/model.c rmsnorm). So HF's
  w = stored - 1, for attn_norm, ffn_norm, post_attention_norm, post_ffw_norm, attn_q_norm,
  attn_k_norm and output_norm.
- Q and K are not permuted for Gemma (NEOX RoPE in both; only llama's are).
- GGUF shapes are [in, out] in ggml order: numpy's view of a dequantized tensor is already
  [out, in], torch's Linear layout.
- Layers il % 6 == 5 are global (rope.freq_base), the others sliding (attention.sliding_window,
  RoPE base 10000 unless rope.freq_base_swa says otherwise), as llama.cpp and model.c do.
- attn scale: attention.scale if present, else 1/sqrt(key_length) = query_pre_attn_scalar^-0.5.
The tokenizer is not converted: record with --prompt-tokens (the ids `raasbench decode
--record` wrote to its trace's /tokens)."""
import json
import os
import sys

import numpy as np


def die(what, why):
    print(f"raasbench: {what}: {why}", file=sys.stderr)
    sys.exit(2)


NORMS = {"attn_norm": "input_layernorm", "ffn_norm": "pre_feedforward_layernorm",
         "post_attention_norm": "post_attention_layernorm",
         "post_ffw_norm": "post_feedforward_layernorm",
         "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm"}
LINEAR = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
          "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
          "ffn_down": "mlp.down_proj"}


def field(r, key, default=None):
    f = r.fields.get(key)
    if f is None:
        if default is None:
            die(str(getattr(r, "path", "gguf")), f"missing metadata {key}")
        return default
    v = f.contents()
    return v


def dequant(t):
    from gguf import GGMLQuantizationType, quants
    data = np.asarray(t.data)
    if t.tensor_type in (GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16):
        x = quants.dequantize(data, t.tensor_type) if t.tensor_type == GGMLQuantizationType.BF16 else data
        x = x.astype(np.float32)
    else:
        x = quants.dequantize(data, t.tensor_type).astype(np.float32)
    shape = tuple(int(s) for s in reversed(t.shape.tolist()))  # ggml [ne0, ne1] -> numpy [ne1, ne0]
    return x.reshape(shape)


def convert(path, out):
    import gguf
    try:
        r = gguf.GGUFReader(path)
    except Exception as ex:  # the reader raises ValueError, struct or numpy errors alike
        die(path, f"not a GGUF file ({type(ex).__name__}: {ex})")
    arch = field(r, "general.architecture")
    if arch != "gemma3":
        die(path, f"architecture '{arch}': this converter handles gemma3 only")
    a = "gemma3."
    n_layers = int(field(r, a + "block_count"))
    hidden = int(field(r, a + "embedding_length"))
    n_head = int(field(r, a + "attention.head_count"))
    n_kv = int(field(r, a + "attention.head_count_kv", n_head))
    head_dim = int(field(r, a + "attention.key_length", hidden // n_head))
    scale = float(field(r, a + "attention.scale", 0.0))
    swa = int(field(r, a + "attention.sliding_window"))
    base = float(field(r, a + "rope.freq_base", 10000.0))
    base_swa = float(field(r, a + "rope.freq_base_swa", 10000.0))
    sd = {}
    vocab = None
    for t in r.tensors:
        x = dequant(t)
        name = t.name
        if name == "token_embd.weight":
            sd["model.embed_tokens.weight"] = x
            vocab = x.shape[0]
        elif name == "output_norm.weight":
            sd["model.norm.weight"] = x - 1.0
        elif name == "output.weight":
            sd["lm_head.weight"] = x
        elif name.startswith("blk."):
            _, il, rest = name.split(".", 2)
            kind = rest.rsplit(".", 1)[0]
            pre = f"model.layers.{int(il)}."
            if kind in NORMS:
                sd[pre + NORMS[kind] + ".weight"] = x - 1.0
            elif kind in LINEAR:
                sd[pre + LINEAR[kind] + ".weight"] = x
            else:
                die(path, f"tensor {name} is not handled")
        else:
            die(path, f"tensor {name} is not handled")
    tied = "lm_head.weight" not in sd
    cfg = {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
        "vocab_size": vocab, "hidden_size": hidden,
        "intermediate_size": int(field(r, a + "feed_forward_length")),
        "num_hidden_layers": n_layers, "num_attention_heads": n_head, "num_key_value_heads": n_kv,
        "head_dim": head_dim, "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": int(field(r, a + "context_length", 32768)),
        "rms_norm_eps": float(field(r, a + "attention.layer_norm_rms_epsilon")),
        "bos_token_id": int(field(r, "tokenizer.ggml.bos_token_id", 2)),
        "eos_token_id": int(field(r, "tokenizer.ggml.eos_token_id", 1)),
        "pad_token_id": 0, "tie_word_embeddings": tied,
        "query_pre_attn_scalar": (1.0 / scale ** 2) if scale > 0 else head_dim,
        "sliding_window": swa,
        "layer_types": ["full_attention" if il % 6 == 5 else "sliding_attention" for il in range(n_layers)],
        "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": base},
                            "sliding_attention": {"rope_type": "default", "rope_theta": base_swa}},
        "final_logit_softcapping": None, "attn_logit_softcapping": None,
        "torch_dtype": "float32", "gguf_source": os.path.basename(path),
    }
    if r.fields.get(a + "rope.scaling.type") is not None:
        die(path, "rope scaling is not handled")
    os.makedirs(out, exist_ok=True)
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, os.path.join(out, "model.safetensors"),
              metadata={"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": cfg["bos_token_id"], "eos_token_id": [cfg["eos_token_id"], 106],
                   "pad_token_id": 0}, f, indent=1)
    print(f"gguf_to_hf: {out}: {len(sd)} tensors, {n_layers} layers, vocab {vocab}", file=sys.stderr)


def main():
    if len(sys.argv) != 3:
        print("usage: gguf_to_hf.py MODEL.gguf OUTDIR", file=sys.stderr)
        sys.exit(2)
    if not os.path.isfile(sys.argv[1]):
        die(sys.argv[1], "no such file")
    convert(sys.argv[1], sys.argv[2])


if __name__ == "__main__":
    main()
