"""Loading models: the toy model's quality, SigLIP support, model keys, caching and clear load errors."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from django.conf import settings

from search.embeddings import Encoder, ModelUnavailableError, encoder_status, get_encoder, model_key_for
from search.embeddings import precision as precision_mod
from search.embeddings.registry import clear_encoder_cache
from search.embeddings.toy_data import random_captioned_pictures

SETTING = "SEMSEARCH_MODEL_ID"


def _recall(encoder: Encoder, n: int, seed: int, k: int) -> float:
    samples = random_captioned_pictures(n, seed=seed, size=96)
    images = encoder.encode_images([picture for picture, _, _ in samples])
    texts = encoder.encode_texts([caption for _, caption, _ in samples])
    keys = np.array([hash(attributes) for _, _, attributes in samples])
    top = np.argsort(-(texts @ images.T), axis=1)[:, :k]
    # A hit is a picture showing exactly what the caption says (two pictures may show the same thing).
    return float((keys[top] == keys[:, None]).any(axis=1).mean())


def test_toy_model_finds_held_out_pictures_from_their_captions(toy_encoder: Encoder) -> None:
    # Given fresh pictures and captions the model never saw, drawn at a size it was not trained at
    # When every caption searches all the pictures
    recall_at_1 = _recall(toy_encoder, n=200, seed=2024, k=1)
    # Then the top hit is right for at least 80% of captions
    assert recall_at_1 >= 0.8


def test_int8_and_bf16_keep_embeddings_and_recall(toy_encoder: Encoder) -> None:
    # Given the toy model in fp32 and in the reduced precisions SEMSEARCH_PRECISION offers on CPUs
    samples = random_captioned_pictures(64, seed=99, size=64)
    pictures, captions = [p for p, _, _ in samples], [c for _, c, _ in samples]
    reference_images, reference_texts = toy_encoder.encode_images(pictures), toy_encoder.encode_texts(captions)
    baseline_recall = _recall(toy_encoder, n=150, seed=5, k=5)
    for name in ("int8", "bf16"):
        encoder = Encoder.load("toy", device="cpu", precision=name)
        # When they encode the same inputs
        images, texts = encoder.encode_images(pictures), encoder.encode_texts(captions)
        # Then vectors stay within cosine 0.99 of fp32 and recall@5 drops by at most one point
        assert encoder.precision == name
        assert float((images * reference_images).sum(1).min()) >= 0.99
        assert float((texts * reference_texts).sum(1).min()) >= 0.99
        assert _recall(encoder, n=150, seed=5, k=5) >= baseline_recall - 0.01


def test_auto_precision_uses_bf16_only_with_native_support(monkeypatch) -> None:
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert precision_mod.resolve_precision("auto", "cpu") == "int8"
    assert precision_mod.resolve_precision("fp32", "cpu") == "fp32"
    assert precision_mod.resolve_precision("fp16", "cpu") == "fp32"
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    assert precision_mod.resolve_precision("auto", "cpu") == "bf16"
    assert precision_mod.resolve_precision("auto", "cuda") == "fp16"
    with pytest.raises(ValueError, match="SEMSEARCH_PRECISION"):
        precision_mod.resolve_precision("fp8", "cpu")


def test_model_keys_follow_the_id_revision_and_weights(tmp_path: Path) -> None:
    # Given the toy model named two ways, a hub id with and without a revision, and a copy of the toy folder
    toy_key = model_key_for("toy", None)
    copy = tmp_path / "my-clip"
    shutil.copytree(settings.SEMSEARCH_TOY_MODEL_DIR, copy)
    before = model_key_for(str(copy), None)
    # When the copy's weights change (a retrain)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    after = model_key_for(str(copy), None)
    # Then keys are stable per name, carry the revision, and follow the weights
    assert toy_key.startswith("toy-clip@")
    assert model_key_for(str(settings.SEMSEARCH_TOY_MODEL_DIR), None) == toy_key
    assert model_key_for("openai/clip-vit-base-patch32", None) == "openai/clip-vit-base-patch32"
    assert model_key_for("openai/clip-vit-base-patch32", "3d74acf") == "openai/clip-vit-base-patch32@3d74acf"
    assert before.startswith("local:my-clip@")
    assert after.startswith("local:my-clip@")
    assert before != after


def test_get_encoder_loads_once_and_reports_status() -> None:
    clear_encoder_cache()
    first = get_encoder("toy")
    assert get_encoder("toy") is first
    status = encoder_status("toy")
    assert status == {"model_id": "toy", "model_key": first.model_key, "loaded": True, "error": None,
                      "precision": first.precision_choice.summary()}  # fmt: skip
    assert status["precision"]["image"] == first.precision


def test_unknown_hub_model_fails_fast_with_the_setting_name(monkeypatch) -> None:
    # Given an offline machine (as this build environment is) and a model id that exists nowhere
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clear_encoder_cache()
    started = time.monotonic()
    # When it is requested
    with pytest.raises(ModelUnavailableError) as caught:
        get_encoder("semsearch-tests/no-such-model", "")
    # Then the error says what to change, and comes within seconds
    assert SETTING in caught.value.message
    assert "toy" in caught.value.message
    assert "local model folder" in caught.value.message
    assert "Traceback" not in caught.value.message
    assert caught.value.status_code == 503
    assert time.monotonic() - started < 20
    # And a status check reports it without raising
    status = encoder_status("semsearch-tests/no-such-model")
    assert status["loaded"] is False
    assert SETTING in status["error"]


@pytest.mark.parametrize("damage", ["garbage_config", "truncated_weights", "missing_folder", "empty_folder"])
def test_corrupt_model_folder_gives_a_clear_error(tmp_path: Path, damage: str) -> None:
    # Given a damaged copy of a model folder
    folder = tmp_path / "model"
    shutil.copytree(settings.SEMSEARCH_TOY_MODEL_DIR, folder)
    if damage == "garbage_config":
        (folder / "config.json").write_text("{ not json")
    elif damage == "truncated_weights":
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "missing_folder":
        shutil.rmtree(folder)
    else:
        shutil.rmtree(folder)
        folder.mkdir()
    # When it is loaded, then one clear domain error names the setting and the alternatives
    with pytest.raises(ModelUnavailableError, match=SETTING) as caught:
        Encoder.load(str(folder), device="cpu")
    assert "'toy'" in caught.value.message
    assert "\n" not in caught.value.message


def test_a_siglip_model_loads_and_encodes(tmp_path: Path) -> None:
    # Given a tiny random SigLIP saved in Hugging Face format (with the CLIP tokenizer: any tokenizer will do)
    from transformers import AutoTokenizer, SiglipConfig, SiglipImageProcessor, SiglipModel

    tokenizer = AutoTokenizer.from_pretrained(settings.SEMSEARCH_TOY_MODEL_DIR, model_max_length=16)
    config = SiglipConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 16,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    )  # fmt: skip
    torch.manual_seed(0)
    SiglipModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "siglip"
    # When the project loads and uses it
    encoder = Encoder.load(str(tmp_path), device="cpu", precision="fp32")
    pictures = [picture for picture, _, _ in random_captioned_pictures(3, seed=1, size=50)]
    images = encoder.encode_images(pictures)
    texts, truncated = encoder.encode_texts_detailed(["a red circle", "word " * 40])
    # Then it gives unit vectors of the model's width, and truncation is still reported
    assert encoder.dimension == 32
    assert images.shape == (3, 32)
    assert texts.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert truncated == [False, True]
    # And the fast image path reproduces SigLIP's plain resize
    assert encoder.image_spec is not None
    assert encoder.image_spec.output_size == (32, 32)


def test_a_process_running_the_model_keeps_numpys_blas_to_one_thread() -> None:
    from threadpoolctl import ThreadpoolController

    # Given numpy's own OpenBLAS (pthreads) allowed two threads, as on any multi-core machine
    spinning = ThreadpoolController().select(threading_layer="pthreads")
    assert spinning.info(), "numpy is expected to ship a pthreads OpenBLAS"
    spinning.limit(limits=2)
    torch_threads = torch.get_num_threads()
    # When a model loads
    Encoder.load("toy", device="cpu", precision="fp32")
    # Then numpy's BLAS runs on the calling thread alone, while torch keeps its team
    assert {lib["num_threads"] for lib in ThreadpoolController().select(threading_layer="pthreads").info()} == {1}
    assert torch.get_num_threads() == torch_threads
