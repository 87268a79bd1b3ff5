"""raasbench.hf: a raasbench policy deciding the KV cache inside transformers' generate().

    from raasbench.hf import policy
    with policy(model, "raas", budget=256) as cache:
        out = model.generate(ids, cache=cache, max_new_tokens=512)
    cache.kv_bytes()            # {layer: resident K+V bytes in the policy's pools}

Inside the block the model's attention runs through a function registered with
transformers' AttentionInterface: on the layers the policy acts on (global layers from
dense_layers on, as replay picks them) it is raasbench's stepper (raasbench.Stepper): the
prompt densely, each decode token over the policy's selection, and the returned cache keeps
nothing for those layers (the stepper's pools are their cache, and the policy evicts from
them). Other layers compute as before. Batch size 1. Needs the C library (make lib)."""
import contextlib

from . import Stepper

IMPL = "raasbench_policy"


def _no_store_layer():
    from transformers.cache_utils import DynamicLayer

    class NoStoreLayer(DynamicLayer):
        """Keeps no tensors: update() returns this call's k, v; the length still counts."""
        n_seen = 0

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            self.n_seen += key_states.shape[-2]
            return key_states, value_states

        def get_seq_length(self, *args, **kwargs):
            return self.n_seen

    return NoStoreLayer()


@contextlib.contextmanager
def policy(model, name, budget, max_tokens=32768, dense_layers=2, page_size=16, seed=1,
           params=()):
    """Yields the cache to pass to generate(cache=...). max_tokens bounds the positions."""
    import sys
    import torch
    from transformers import AttentionInterface, AttentionMaskInterface, DynamicCache
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    hq = cfg.num_attention_heads
    hkv = getattr(cfg, "num_key_value_heads", None) or hq
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // hq
    types = getattr(cfg, "layer_types", None) or ["full_attention"] * cfg.num_hidden_layers
    scale = next((float(m.scaling) for m in model.modules() if hasattr(m, "scaling") and hasattr(m, "layer_idx")),
                 d ** -0.5)
    steppers = {l: Stepper(name, budget, l, hq, hkv, d, max_tokens, scale, page_size=page_size,
                           seed=seed, params=params)
                for l in range(cfg.num_hidden_layers)
                if l >= dense_layers and types[l] == "full_attention"}
    cache = DynamicCache(config=model.config)
    for l in steppers:
        cache.layers[l] = _no_store_layer()
    base_name = "eager" if getattr(cfg, "attn_logit_softcapping", None) else "sdpa"
    shared = AttentionInterface._global_mapping.get(base_name)

    def attention(module, query, key, value, attention_mask, **kwargs):
        st = steppers.get(module.layer_idx)
        if st is None:
            base = shared or sys.modules[type(module).__module__].eager_attention_forward
            return base(module, query, key, value, attention_mask, **kwargs)
        n = query.shape[2]
        pos = cache.layers[module.layer_idx].n_seen - n  # position of this call's first token
        q = query[0].transpose(0, 1).float().cpu().numpy()
        k = key[0, :, -n:].transpose(0, 1).float().cpu().numpy()
        v = value[0, :, -n:].transpose(0, 1).float().cpu().numpy()
        o = st.prefill(q, k, v) if pos == 0 else st.step(pos, q[0], k[0], v[0])[None]
        return torch.from_numpy(o).to(device=query.device, dtype=query.dtype)[None], None

    AttentionInterface.register(IMPL, attention)
    AttentionMaskInterface.register(IMPL, ALL_MASK_ATTENTION_FUNCTIONS._global_mapping[base_name])
    before = model.config._attn_implementation
    model.set_attn_implementation(IMPL)
    try:
        yield _wrapped(cache, steppers)
    finally:
        model.set_attn_implementation(before)
        for st in steppers.values():
            st.close()


def _wrapped(cache, steppers):
    """The DynamicCache itself (generate needs a Cache), with kv_bytes() and steppers added."""
    cache.steppers = steppers
    cache.kv_bytes = lambda: {l: st.kv_bytes() for l, st in steppers.items()}
    return cache
