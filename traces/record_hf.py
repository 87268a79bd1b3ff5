#!/usr/bin/env python3
"""record_hf.py: record a raasbench trace (traces/FORMAT.md, format_version 1) from a
transformers causal LM.

    python3 traces/record_hf.py --model PATH (--prompt TEXT | --prompt-file P |
        --prompt-tokens IDS | --tasks FILE.jsonl [--limit K]) --max-new-tokens N --out T.h5
        [--dtype f16|f32] [--device cpu|cuda] [--temperature T --seed S] [--store-outputs]

Capture: a recording attention function is registered with transformers' AttentionInterface
(the installed 5.x dispatches every attention module through it, keyed by
config._attn_implementation). It receives the post-RoPE query [b, Hq, n, d] (after q_norm
where the model has one) and the keys and values the attention uses [b, Hkv, past+n, d]
(GQA layout kept), plus the layer's `scaling` and `sliding_window`; the last n rows of the
keys and values are this call's tokens. It forwards to the real implementation (sdpa by
default) and records q, k, v (and with --store-outputs the attention output before o_proj,
/check/layer_NNN/o, for tests/check_hf_outputs.py).

Like `raasbench decode --record`, every generated token is forwarded once more so its own
q, k, v are in the trace: n_tokens = prompt + generated, /tokens holds all of them.

Streaming: each layer's rows are held on the device for at most --chunk tokens, then
appended to resizable, chunked, compressed HDF5 datasets and flushed, so memory is O(chunk)
and the file on disk is always readable up to the last flush. The file is written to
`<out>.tmp-<pid>` and renamed into place at the end, as the C writer does.

Families whose attention this supports (the dispatch above is shared by all of them):
Llama, Mistral, Qwen2, Qwen3 (q/k norm), Gemma 2 (logit softcapping: recorded as the
attribute attn_logit_softcap; the format's dense reference has no softcap, so a warning
is printed), Gemma 3 (q/k norm, query_pre_attn_scalar, sliding-window layers).
Tested (tests/e2e_record_hf.sh): Llama, Qwen2, Gemma 3 (random weights), and Gemma 3 270M
converted from the GGUF by tools/gguf_to_hf.py.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import h5py
import numpy as np

FORMAT = "raasbench-trace"
FORMAT_VERSION = 1
IMPL_NAME = "raasbench_record"


def die(what, why):
    print(f"raasbench: {what}: {why}", file=sys.stderr)
    sys.exit(2)


def repo_provenance():
    here = os.path.dirname(os.path.abspath(__file__))
    version = "0.1.0"
    try:
        with open(os.path.join(here, "..", "Makefile")) as f:
            for line in f:
                if line.startswith("VERSION :="):
                    version = line.split(":=", 1)[1].strip()
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return version, commit


class TraceWriter:
    """Streams one trace to HDF5. Layers are created on their first append (their sliding
    window is known only then); add() buffers per layer on the device, flush() appends."""

    def __init__(self, path, meta, n_layers, dtype, chunk, store_outputs):
        self.path, self.tmp = path, f"{path}.tmp-{os.getpid()}"
        self.meta, self.n_layers, self.chunk = meta, n_layers, chunk
        self.np_dtype = np.float16 if dtype == "f16" else np.float32
        self.store_outputs = store_outputs
        self.f = h5py.File(self.tmp, "w")
        self.f.attrs.update(meta)
        self.f.attrs["n_tokens"] = 0
        self.layers = {}  # layer index -> dict(group, ds, buf, n_written, window)
        self.n_buf = 0

    def _create_layer(self, layer, window, hq, hkv, d):
        g = self.f.create_group(f"layer_{layer:03d}")
        g.attrs["sliding_window"] = np.int64(window)
        ds = {}
        for name, heads in (("q", hq), ("k", hkv), ("v", hkv)):
            row = heads * d * np.dtype(self.np_dtype).itemsize
            ct = max(1, 65536 // row)  # ~64 KiB chunks, as the C writer makes them
            ds[name] = g.create_dataset(name, shape=(0, heads, d), maxshape=(None, heads, d),
                                        dtype=self.np_dtype, chunks=(ct, heads, d),
                                        shuffle=True, compression="gzip", compression_opts=1)
        if self.store_outputs:
            cg = self.f.require_group("check").create_group(f"layer_{layer:03d}")
            ds["o"] = cg.create_dataset("o", shape=(0, hq, d), maxshape=(None, hq, d),
                                        dtype=np.float32, chunks=(max(1, 65536 // (hq * d * 4)), hq, d),
                                        shuffle=True, compression="gzip", compression_opts=1)
        self.layers[layer] = {"ds": ds, "buf": {k: [] for k in ds}, "n": 0, "window": window}

    def add(self, layer, window, q, k, v, o=None):
        """q [n, Hq, d], k and v [n, Hkv, d], o [n, Hq, d]: torch tensors on any device."""
        if layer not in self.layers:
            self._create_layer(layer, window, q.shape[1], k.shape[1], q.shape[2])
        L = self.layers[layer]
        if L["window"] != window:
            die(self.path, f"layer {layer}: sliding window changed from {L['window']} to {window}")
        L["buf"]["q"].append(q.detach())
        L["buf"]["k"].append(k.detach())
        L["buf"]["v"].append(v.detach())
        if self.store_outputs:
            L["buf"]["o"].append(o.detach())

    def end_step(self, n):
        """Every layer has added n more tokens: flush when a chunk is full."""
        self.n_buf += n
        if self.n_buf >= self.chunk:
            self.flush()

    def flush(self):
        import torch
        for layer, L in self.layers.items():
            for name, parts in L["buf"].items():
                if not parts:
                    continue
                x = torch.cat(parts, 0).float().cpu().numpy()
                if not np.isfinite(x).all():
                    bad = np.argwhere(~np.isfinite(x))[0]
                    die(self.path, f"refusing to write NaN/Inf into layer {layer} {name} "
                        f"(token {self.layers[layer]['ds'][name].shape[0] + int(bad[0])}, head {int(bad[1])})")
                ds = L["ds"][name]
                n0 = ds.shape[0]
                ds.resize(n0 + x.shape[0], axis=0)
                ds[n0:] = x.astype(ds.dtype)
                parts.clear()
        self.n_buf = 0
        self.f.flush()

    def finish(self, tokens, text):
        self.flush()
        counts = {(l, n): L["ds"][n].shape[0] for l, L in self.layers.items() for n in ("q", "k", "v")}
        if len(self.layers) != self.n_layers:
            self.abort()
            die(self.path, f"{len(self.layers)} of {self.n_layers} layers were recorded "
                "(does this model use the attention interface?)")
        n_tokens = len(tokens)
        if set(counts.values()) != {n_tokens}:
            self.abort()
            die(self.path, f"layers hold {sorted(set(counts.values()))} tokens, expected {n_tokens}")
        if n_tokens <= self.meta["n_prefill"]:
            self.abort()
            die(self.path, "no decode step was recorded")
        self.f.attrs["n_tokens"] = np.int64(n_tokens)
        self.f.attrs["layers"] = np.array(sorted(self.layers), dtype=np.int32)
        self.f.create_dataset("tokens", data=np.asarray(tokens, dtype=np.int32))
        if text is not None:
            self.f.create_dataset("text", data=text, dtype=h5py.string_dtype("utf-8"))
        self.f.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        try:
            self.f.close()
        finally:
            if os.path.exists(self.tmp):
                os.remove(self.tmp)


class Capture:
    """The state the recording attention function writes into: the writer of the trace
    being recorded (None: pass through), and the scale and softcap the layers reported."""
    writer = None
    scales = {}
    softcaps = {}
    steppers = {}    # layer -> raasbench.Stepper: the policy decides this layer's cache
    selections = {}  # layer -> [per decode step: uint8 mask [Hq, max_tokens]] (--store-outputs)
    pos = 0          # position of the first token of the current forward


def make_recording_attention(base_name):
    from transformers import AttentionInterface
    shared = AttentionInterface._global_mapping.get(base_name)

    def recording_attention(module, query, key, value, attention_mask, **kwargs):
        # "eager" is not in the shared table: each model file has its own (Gemma 2's caps
        # the logits there), found next to the attention module's class
        st = Capture.steppers.get(module.layer_idx)
        if st is not None:
            out, weights = policy_attention(st, module.layer_idx, query, key, value), None
        else:
            base = shared or sys.modules[type(module).__module__].eager_attention_forward
            out, weights = base(module, query, key, value, attention_mask, **kwargs)
        w = Capture.writer
        if w is not None:
            if query.shape[0] != 1:
                die("record_hf", "batch size must be 1")
            n = query.shape[2]
            layer = module.layer_idx
            window = kwargs.get("sliding_window") or 0
            scale = kwargs.get("scaling")
            if scale is None:
                scale = query.shape[-1] ** -0.5
            Capture.scales[layer] = float(scale)
            Capture.softcaps[layer] = kwargs.get("softcap")
            q = query[0].transpose(0, 1)                    # [n, Hq, d]
            k = key[0, :, -n:].transpose(0, 1)              # [n, Hkv, d]
            v = value[0, :, -n:].transpose(0, 1)
            w.add(layer, int(window), q, k, v, out[0] if w.store_outputs else None)  # out [n, Hq, d]
        return out, weights

    return recording_attention


def policy_attention(st, layer, query, key, value):
    """The attention of a policy layer, computed by raasbench's stepper over what the policy
    keeps resident: the prompt densely, then each decode token over the policy's selection.
    The layer's transformers cache stores nothing (NoStoreLayer): the stepper's pools are
    its cache. Returns [1, n, Hq, d] like transformers' attention functions."""
    import torch
    n = query.shape[2]
    q = query[0].transpose(0, 1).float().cpu().numpy()
    k = key[0, :, -n:].transpose(0, 1).float().cpu().numpy()
    v = value[0, :, -n:].transpose(0, 1).float().cpu().numpy()
    if n > 1 or Capture.pos == 0:
        o = st.prefill(q, k, v)
    else:
        o = st.step(Capture.pos, q[0], k[0], v[0])[None]
        if layer in Capture.selections:
            import numpy as np
            m = np.zeros((st.hq, st.cfg.max_tokens), np.uint8)
            for h, ps in enumerate(st.selection()):
                m[h, ps] = 1
            Capture.selections[layer].append(m)
    return torch.from_numpy(o).to(device=query.device, dtype=query.dtype)[None]


def no_store_layer():
    """A transformers cache layer that keeps nothing, for layers whose cache a raasbench
    stepper holds: update() hands back this call's k, v; the length still counts."""
    from transformers.cache_utils import DynamicLayer

    class NoStoreLayer(DynamicLayer):
        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            self.n_seen = getattr(self, "n_seen", 0) + key_states.shape[-2]
            return key_states, value_states

        def get_seq_length(self, *args, **kwargs):
            return getattr(self, "n_seen", 0)

    return NoStoreLayer()


def load_model(args):
    import torch
    from transformers import AttentionInterface, AttentionMaskInterface, AutoModelForCausalLM
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    if args.attn_base == "auto":
        from transformers import AutoConfig
        c = AutoConfig.from_pretrained(args.model)
        c = c.get_text_config() if hasattr(c, "get_text_config") else c
        args.attn_base = "eager" if getattr(c, "attn_logit_softcapping", None) else "sdpa"
    AttentionInterface.register(IMPL_NAME, make_recording_attention(args.attn_base))
    AttentionMaskInterface.register(IMPL_NAME, ALL_MASK_ATTENTION_FUNCTIONS._global_mapping[args.attn_base])
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[args.model_dtype]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype, attn_implementation=IMPL_NAME)
    model.to(args.device).eval()
    tok = None
    try:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(args.model)
    except Exception as ex:  # a converted or random model may have no tokenizer
        if not args.prompt_tokens:
            die(args.model, f"no tokenizer ({type(ex).__name__}); give --prompt-tokens")
    return model, tok


def text_config(model):
    c = model.config
    return c.get_text_config() if hasattr(c, "get_text_config") else c


def record_one(model, tok, ids, args, out_path):
    import torch
    cfg = text_config(model)
    n_layers = cfg.num_hidden_layers
    hq, hkv = cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // hq
    version, commit = repo_provenance()
    name = os.path.basename(os.path.normpath(args.model)) if os.path.isdir(args.model) else args.model
    meta = {"format": FORMAT, "format_version": np.int64(FORMAT_VERSION), "source": "record_hf",
            "model": args.model_name or name, "n_layers": np.int64(n_layers),
            "n_q_heads": np.int64(hq), "n_kv_heads": np.int64(hkv), "head_dim": np.int64(d),
            "n_prefill": np.int64(len(ids)), "attn_scale": 0.0,
            "raasbench_version": version, "git_commit": commit,
            "hf_architecture": ",".join(model.config.architectures or [type(model).__name__]),
            "hf_config": model.config.to_json_string(use_diff=False),
            "torch_version": str(torch.__version__),
            "transformers_version": str(__import__("transformers").__version__),
            "sampling": json.dumps({"temperature": args.temperature, "top_p": args.top_p,
                                    "seed": args.seed, "model_dtype": args.model_dtype,
                                    "attn_base": args.attn_base})}
    meta["attn_scale"] = 1.0  # replaced by the scale the layers report, before closing
    w = TraceWriter(out_path, meta, n_layers, args.dtype, args.chunk, args.store_outputs)
    Capture.writer, Capture.scales, Capture.softcaps = w, {}, {}
    eos = set()
    if not args.ignore_eos:
        e = getattr(model.generation_config, "eos_token_id", None) or cfg.eos_token_id
        eos = set(e if isinstance(e, (list, tuple)) else [e] if e is not None else [])
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    tokens = list(ids)
    t0 = time.time()
    try:
        from transformers import DynamicCache
        with torch.inference_mode():
            cache = DynamicCache(config=model.config)
            steppers = make_steppers(model, args, len(ids) + args.max_new_tokens, d, hq, hkv)
            for layer in steppers:
                cache.layers[layer] = no_store_layer()
            Capture.steppers, Capture.pos = steppers, 0
            Capture.selections = {l: [] for l in steppers} if args.store_outputs else {}
            x = torch.tensor([ids], device=args.device)
            logits = model(input_ids=x, cache=cache, use_cache=True).logits[0, -1]
            Capture.pos = len(ids)
            w.end_step(len(ids))
            t_prefill = time.time() - t0
            for i in range(args.max_new_tokens):
                if args.temperature > 0:
                    p = torch.softmax(logits.float().cpu() / args.temperature, -1)
                    if args.top_p < 1:
                        ps, ix = torch.sort(p, descending=True)
                        keep = torch.cumsum(ps, 0) - ps < args.top_p
                        p = torch.zeros_like(p).scatter(0, ix[keep], ps[keep])
                    nxt = int(torch.multinomial(p, 1, generator=gen))
                else:
                    nxt = int(torch.argmax(logits))
                tokens.append(nxt)
                # forward the new token so its own q, k, v are recorded (as decode --record)
                logits = model(input_ids=torch.tensor([[nxt]], device=args.device), cache=cache,
                               use_cache=True).logits[0, -1]
                Capture.pos += 1
                w.end_step(1)
                if nxt in eos:
                    break
        if args.device == "cuda":
            torch.cuda.synchronize()
        scales = set(Capture.scales.values())
        if len(scales) != 1:
            w.abort()
            die(out_path, f"layers use different attention scales {sorted(scales)}: the format has one")
        w.f.attrs["attn_scale"] = scales.pop()
        caps = {c for c in Capture.softcaps.values() if c}
        if caps:
            w.f.attrs["attn_logit_softcap"] = float(caps.pop())
            print("record_hf: warning: this model caps attention logits (softcap "
                  f"{w.f.attrs['attn_logit_softcap']}); the trace's dense reference does not",
                  file=sys.stderr)
        if steppers:
            w.f.attrs["policy"] = json.dumps({"policy": args.policy, "budget": args.budget,
                                              "params": args.param, "page_size": args.page_size,
                                              "dense_layers": args.dense_layers, "seed": args.policy_seed})
            kvb = {l: st.kv_bytes() for l, st in steppers.items()}
            hf_bytes = sum(t.numel() * t.element_size() for l in steppers
                           for t in (cache.layers[l].keys, cache.layers[l].values) if t is not None)
            w.f.attrs["policy_kv_bytes"] = json.dumps(kvb)
            w.f.attrs["policy_hf_cache_bytes"] = np.int64(hf_bytes)
            print(f"record_hf: policy {args.policy} L={args.budget} on layers {sorted(steppers)}: "
                  f"resident K+V {sum(kvb.values())} bytes (fp16), transformers' cache for them "
                  f"{hf_bytes} bytes", file=sys.stderr)
            for l, masks in Capture.selections.items():
                g = w.f.require_group("check").require_group(f"layer_{l:03d}")
                g.create_dataset("selection", data=np.stack(masks)[:, :, :len(tokens)],
                                 compression="gzip", compression_opts=1)
        text = tok.decode(tokens, skip_special_tokens=True) if tok is not None else None
        w.finish(tokens, text)
    except BaseException:
        if os.path.exists(w.tmp):
            w.abort()
        raise
    finally:
        Capture.writer = None
        for st in Capture.steppers.values():
            st.close()
        Capture.steppers, Capture.selections = {}, {}
    dt = time.time() - t0
    n_gen = len(tokens) - len(ids)
    print(f"record_hf: {out_path}: {len(ids)} prompt + {n_gen} generated tokens, "
          f"{n_layers} layers; prefill {t_prefill:.2f} s, decode {n_gen / max(dt - t_prefill, 1e-9):.1f} tokens/s",
          file=sys.stderr)
    return tokens


def make_steppers(model, args, max_tokens, d, hq, hkv):
    """raasbench steppers for the layers the policy acts on, as replay chooses them: global
    layers (no sliding window) from --dense-layers on (the first ones stay dense)."""
    if not args.policy:
        return {}
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import raasbench
    cfg = text_config(model)
    types = getattr(cfg, "layer_types", None) or ["full_attention"] * cfg.num_hidden_layers
    scale = None
    for m in model.modules():
        if hasattr(m, "scaling") and hasattr(m, "layer_idx"):
            scale = float(m.scaling)
            break
    out = {}
    for l in range(cfg.num_hidden_layers):
        if l < args.dense_layers or types[l] != "full_attention":
            continue
        try:
            out[l] = raasbench.Stepper(args.policy, args.budget, l, hq, hkv, d, max_tokens,
                                       scale if scale else d ** -0.5, page_size=args.page_size,
                                       seed=args.policy_seed, params=args.param)
        except (raasbench.RaasbenchError, OSError) as ex:
            die("--policy", str(ex).removeprefix("raasbench: "))
    return out


def read_tasks(path, limit, template):
    out = []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                o = json.loads(line)
            except json.JSONDecodeError as ex:
                die(f"{path}:{i}", f"not JSON ({ex.msg})")
            if ("prompt" in o) == ("question" in o):
                die(f"{path}:{i}", "prompt/question: give exactly one of them")
            p = o.get("prompt") or (template.replace("{question}", o["question"]) if template else o["question"])
            out.append((str(o.get("id", i)), p))
            if limit and len(out) >= limit:
                break
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="HF model directory (config.json + weights)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt")
    src.add_argument("--prompt-file")
    src.add_argument("--prompt-tokens", help="comma-separated token ids (BOS included if wanted)")
    src.add_argument("--tasks", help="JSONL of {prompt} or {question} lines (raasbench tasks' format)")
    ap.add_argument("--limit", type=int, default=0, help="first K tasks (default all)")
    ap.add_argument("--template", help="file with {question} for question tasks")
    ap.add_argument("--max-new-tokens", type=int, required=True)
    ap.add_argument("--out", required=True, help="trace path; with several tasks, T-<id>.h5")
    ap.add_argument("--dtype", choices=["f16", "f32"], default="f16", help="trace storage dtype")
    ap.add_argument("--model-dtype", choices=["f32", "bf16", "f16"], default=None,
                    help="compute dtype (default f32 on cpu, bf16 on cuda)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ignore-eos", action="store_true", help="do not stop at EOS")
    ap.add_argument("--store-outputs", action="store_true",
                    help="also store transformers' attention outputs as /check/layer_NNN/o")
    ap.add_argument("--attn-base", choices=["auto", "sdpa", "eager"], default="auto",
                    help="the attention implementation that computes (auto: sdpa, or eager "
                    "for models that cap attention logits, which sdpa cannot)")
    ap.add_argument("--chunk", type=int, default=64, help="tokens buffered per flush")
    ap.add_argument("--model-name", help="model name written to the trace (default: directory name)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--policy", help="a raasbench policy decides the KV cache of the global "
                    "layers from --dense-layers on (python/ over build/libraasbench.so)")
    ap.add_argument("--budget", type=int, default=0, help="the policy's budget L, tokens per KV head")
    ap.add_argument("--param", action="append", default=[], help="policy.key=value (repeatable)")
    ap.add_argument("--dense-layers", type=int, default=2)
    ap.add_argument("--page-size", type=int, default=16)
    ap.add_argument("--policy-seed", type=int, default=1, help="as replay's --seed (default 1)")
    args = ap.parse_args(argv)
    if args.max_new_tokens < 1:
        die("--max-new-tokens", "must be >= 1")
    if args.temperature < 0:
        die("--temperature", "must be >= 0")
    if not 0 < args.top_p <= 1:
        die("--top-p", "must be in (0, 1]")
    if args.chunk < 1:
        die("--chunk", "must be >= 1")
    if args.policy and args.budget < 1:
        die("--budget", "required (>= 1) with --policy")
    if not os.path.isdir(args.model):
        die(args.model, "not a model directory")
    prompt_ids = None
    if args.prompt_tokens:
        try:
            prompt_ids = [int(t) for t in args.prompt_tokens.split(",") if t.strip()]
        except ValueError:
            die("--prompt-tokens", "expected comma-separated integers")
    if args.model_dtype is None:
        args.model_dtype = "bf16" if args.device == "cuda" else "f32"
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        die("--device", "cuda requested but torch sees no GPU")
    model, tok = load_model(args)

    def encode(text):
        return tok(text, add_special_tokens=True)["input_ids"]

    if prompt_ids is not None:
        jobs = [(None, prompt_ids)]
    elif args.prompt is not None:
        jobs = [(None, encode(args.prompt))]
    elif args.prompt_file:
        try:
            with open(args.prompt_file, encoding="utf-8") as f:
                jobs = [(None, encode(f.read()))]
        except OSError as ex:
            die(args.prompt_file, ex.strerror)
    else:
        template = open(args.template, encoding="utf-8").read() if args.template else None
        tasks = read_tasks(args.tasks, args.limit, template)
        if not tasks:
            die(args.tasks, "no tasks")
        jobs = [(tid, encode(p)) for tid, p in tasks]
    for tid, ids in jobs:
        if not ids:
            die("prompt", "empty after tokenization")
        out = args.out
        if len(jobs) > 1:
            root, ext = os.path.splitext(args.out)
            out = f"{root}-{tid}{ext or '.h5'}"
        record_one(model, tok, ids, args, out)


if __name__ == "__main__":
    main()
