"""GatedPromptTuning and E2VPT without pruning (issue 17): closed-form counts, one training step with the
backbone frozen, the mechanisms against hand-written attention, refusal on other families."""
import pytest
import torch
import torch.nn.functional as F

from apbench import methods
from apbench.methods.e2vpt import kv_prompted_attention

from method_checks import batch, frozen_logits, n_trainable, run_ok, tiny, train_step_keeps_frozen

# tiny_vit: width D = 32, 2 blocks, 2 heads of 16, 16 patches + class token; head 32*10 + 10 = 330.
D, L, HEADS, HD, HEAD = 32, 2, 2, 16, 330


def test_gated_prompt_trains_prompt_gates_temperatures_and_head_in_closed_form():
    model = tiny("vit")
    adapted = methods.apply(model, "gated_prompt", num_tokens=3, gate_init=5.0, dropout=0.0)
    # 3 tokens x 32 + one gate per block but the last (1) + one temperature per block (2) + head
    assert n_trainable(model) == 3 * D + (L - 1) + L + HEAD == 429
    assert adapted.inserted == 3 * D + (L - 1) + L
    assert torch.equal(model.apbench_gpt["gate_logit"], torch.tensor([-5.0]))
    train_step_keeps_frozen(adapted)
    no_temp = methods.apply(tiny("vit"), "gated_prompt", num_tokens=3, learn_temperature=False)
    assert no_temp.inserted == 3 * D + (L - 1)


def test_a_closed_gate_passes_the_prompts_through_its_block_unchanged():
    model = tiny("vit").eval()
    methods.apply(model, "gated_prompt", num_tokens=3, dropout=0.0)
    with torch.no_grad():
        model.apbench_gpt["gate_logit"].fill_(-1e4)  # sigmoid = 0 exactly in float32
    seen = {}
    model.blocks[1].register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    with torch.no_grad():
        model(batch()[0])
    prompt = model.apbench_gpt["prompt"][0]
    assert torch.equal(seen["x"][:, 1:4], prompt.expand(4, -1, -1))  # rows after the class token
    assert seen["x"].shape[1] == 1 + 3 + 16


def test_the_temperature_divides_the_attention_logits():
    model = tiny("vit").eval()
    methods.apply(model, "gated_prompt", num_tokens=2, dropout=0.0)
    attn = model.blocks[0].attn
    with torch.no_grad():
        model.apbench_gpt["temperature"][0] = 2.5
        x = torch.randn(3, 19, D, generator=torch.Generator().manual_seed(0))
        got = attn(x)
        # by hand: softmax(q k^T * scale / 2.5) v, then the output projection
        w, b = attn.qkv.weight, attn.qkv.bias
        q, k, v = (x @ w.T + b).reshape(3, 19, 3, HEADS, HD).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) * HD ** -0.5 / 2.5, dim=-1)
        want = attn.proj((a @ v).transpose(1, 2).reshape(3, 19, D))
    assert torch.allclose(got, want, atol=1e-5)


def test_gated_prompt_dropout_acts_only_while_training():
    model = tiny("vit")
    adapted = methods.apply(model, "gated_prompt", num_tokens=3, dropout=0.5)
    x = batch()[0]
    adapted.eval()
    with torch.no_grad():
        assert torch.equal(adapted.logits(x), adapted.logits(x))
        adapted.train()
        torch.manual_seed(0)
        a = adapted.logits(x)
        torch.manual_seed(1)
        assert not torch.equal(a, adapted.logits(x))
    assert not model.blocks[0].training  # the frozen backbone stays in eval mode


def test_e2vpt_trains_deep_visual_and_key_value_prompts_in_closed_form():
    model = tiny("vit")
    adapted = methods.apply(model, "e2vpt_no_pruning", num_tokens_p=3, num_tokens_kv=4)
    # per block: 3 visual tokens x 32 + 2 heads x 4 rows x 16 (one tensor for keys and values)
    assert n_trainable(model) == L * (3 * D + HEADS * 4 * HD) + HEAD == 778
    assert adapted.method == "e2vpt_no_pruning" and "without pruning" in adapted.info["pruning"]
    bound = (6 / (4 * HD)) ** 0.5  # kaiming_uniform, fan_in = rows x head_dim, gain sqrt(2)
    kv = model.apbench_e2vpt_kv["1"]
    assert kv.shape == (HEADS, 4, HD) and kv.abs().max() <= bound
    train_step_keeps_frozen(adapted)


def test_key_value_prompted_attention_matches_the_hand_written_formula():
    model = tiny("vit").eval()
    attn = model.blocks[0].attn
    g = torch.Generator().manual_seed(3)
    x, p = torch.randn(2, 17, D, generator=g), torch.randn(HEADS, 4, HD, generator=g)
    with torch.no_grad():
        got = kv_prompted_attention(attn, x, p)
        q, k, v = (x @ attn.qkv.weight.T + attn.qkv.bias).reshape(2, 17, 3, HEADS, HD).permute(2, 0, 3, 1, 4)
        k, v = torch.cat([p.expand(2, -1, -1, -1), k], 2), torch.cat([p.expand(2, -1, -1, -1), v], 2)
        a = torch.softmax(q @ k.transpose(-2, -1) * HD ** -0.5, dim=-1)  # over 4 prompt + 17 token keys
        want = attn.proj((a @ v).transpose(1, 2).reshape(2, 17, D))
    assert torch.allclose(got, want, atol=1e-5)


def test_removing_e2vpt_restores_the_frozen_model_exactly():
    x = batch()[0]
    model = tiny("vit").eval()
    adapted = methods.apply(model, "e2vpt_no_pruning", num_tokens_p=2, num_tokens_kv=2)
    with torch.no_grad():
        assert not torch.allclose(model(x), frozen_logits("vit", x))
        adapted.remove()
        assert torch.equal(model(x), frozen_logits("vit", x))


@pytest.mark.parametrize("method", ["gated_prompt", "e2vpt_no_pruning"])
@pytest.mark.parametrize("family", ["resnet", "swin", "efficientnet"])
def test_other_families_are_refused(method, family):
    with pytest.raises(methods.MethodError, match="supports: vit"):
        methods.apply(tiny(family), method)


@pytest.mark.parametrize("method", ["gated_prompt", "e2vpt_no_pruning"])
def test_one_runner_cell_on_tiny_vit(method, tmp_path):
    extra = ["method.num_tokens=4"] if method == "gated_prompt" else []
    rec = run_ok(tmp_path, "tiny_vit", method, "trainer.measure_efficiency=false", *extra)
    assert rec["method"] == method and rec["params"]["trainable"] > HEAD
