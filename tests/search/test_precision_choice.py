"""``SEMSEARCH_PRECISION=auto`` on a CPU: precision chosen by measurement, per tower, cached per model and machine;
explicit settings win; bf16 is stored weights with LayerNorms in fp32."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from django.conf import settings

from search.embeddings import Encoder, autotune
from search.embeddings import precision as precision_mod
from search.embeddings.toy_data import random_captioned_pictures


def _pictures_and_captions() -> tuple[list, list[str]]:
    samples = random_captioned_pictures(24, seed=7, size=64)
    return [p for p, _, _ in samples], [c for _, c, _ in samples]


def test_auto_measures_every_candidate_keeps_quality_and_picks_the_fastest_per_tower(tmp_path: Path) -> None:
    # When the toy model loads with auto on the CPU
    encoder = Encoder.load("toy", device="cpu", precision="auto", choice_cache_dir=tmp_path)
    choice = encoder.precision_choice

    # Then every candidate was measured (or ruled out with a reason), and the fastest kept one serves each tower
    assert choice.source == "measured"
    assert set(choice.measured) == set(autotune.CANDIDATES)
    kept = {name: row for name, row in choice.measured.items() if row["kept"]}
    assert "fp32" in kept
    assert all(row["min_cosine"] >= autotune.MIN_COSINE for row in kept.values())
    assert all(row.get("reason") for row in choice.measured.values() if not row["kept"])
    assert choice.image == max(kept, key=lambda name: kept[name]["images_per_s"]) == encoder.precision
    assert choice.text == min(kept, key=lambda name: kept[name]["text_ms"]) == encoder.text_precision

    # And its vectors stay within cosine 0.99 of fp32
    reference = Encoder.load("toy", device="cpu", precision="fp32")
    pictures, captions = _pictures_and_captions()
    assert float((encoder.encode_images(pictures) * reference.encode_images(pictures)).sum(1).min()) >= 0.99
    assert float((encoder.encode_texts(captions) * reference.encode_texts(captions)).sum(1).min()) >= 0.99


def test_the_choice_is_cached_per_model_and_machine(tmp_path: Path, monkeypatch) -> None:
    # Given a first load that measured and wrote its choice
    first = Encoder.load("toy", device="cpu", precision="auto", choice_cache_dir=tmp_path)
    (record,) = tmp_path.glob("*.json")
    assert json.loads(record.read_text())["model_key"] == first.model_key

    # When the same model loads again on the same machine, nothing is measured
    def no_measuring(build):  # pragma: no cover - fails the test if reached
        raise AssertionError("measured again")

    monkeypatch.setattr(autotune, "_measure", no_measuring)
    again = Encoder.load("toy", device="cpu", precision="auto", choice_cache_dir=tmp_path)
    assert again.precision_choice.source == "cached"
    assert (again.precision, again.text_precision) == (first.precision, first.text_precision)
    monkeypatch.undo()

    # And another machine (CPU, flags, torch or threads differ) or other weights measure afresh
    monkeypatch.setattr(autotune, "machine_fingerprint", lambda device: "another CPU|flags|torch|threads 2|cpu")
    assert Encoder.load("toy", device="cpu", precision="auto", choice_cache_dir=tmp_path).precision_choice.source \
        == "measured"  # fmt: skip
    monkeypatch.undo()
    retrained = tmp_path / "retrained"
    shutil.copytree(settings.SEMSEARCH_TOY_MODEL_DIR, retrained)
    weights = retrained / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    other = Encoder.load(str(retrained), device="cpu", precision="auto", choice_cache_dir=tmp_path / "cache")
    assert other.model_key != first.model_key
    assert other.precision_choice.source == "measured"


def test_an_unreadable_cache_file_is_measured_again(tmp_path: Path) -> None:
    Encoder.load("toy", device="cpu", precision="auto", choice_cache_dir=tmp_path)
    (record,) = tmp_path.glob("*.json")
    record.write_text("{not json")
    assert Encoder.load("toy", device="cpu", precision="auto", choice_cache_dir=tmp_path).precision_choice.source \
        == "measured"  # fmt: skip
    assert json.loads(record.read_text())["source"] == "cached"


@pytest.mark.parametrize("setting", ["fp32", "int8", "bf16"])
def test_an_explicit_precision_wins_and_measures_nothing(setting: str, tmp_path: Path) -> None:
    encoder = Encoder.load("toy", device="cpu", precision=setting, choice_cache_dir=tmp_path)
    assert (encoder.precision, encoder.text_precision, encoder.precision_choice.source) == (setting, setting, "setting")
    assert not list(tmp_path.glob("*.json"))


def test_towers_take_their_own_precision_and_bf16_keeps_layernorms_in_fp32() -> None:
    # Given the toy model with int8 images and bf16 text
    encoder = Encoder.load("toy", device="cpu", precision="fp32")
    model = precision_mod.prepare_model(encoder.model, "int8", "cpu", text_precision="bf16")
    # Then the image tower's Linear layers are quantised, the text tower's are bf16, its LayerNorms fp32
    vision_linears = [m for m in model.vision_model.modules() if type(m).__name__ == "Linear"]
    assert vision_linears
    assert all("quantized" in type(m).__module__ for m in vision_linears)
    text_linears = [m for m in model.text_model.modules() if isinstance(m, torch.nn.Linear)]
    assert text_linears
    assert all(m.weight.dtype == torch.bfloat16 for m in text_linears)
    norms = [m for m in model.text_model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms
    assert all(m.weight.dtype == torch.float32 for m in norms)
    # And the mixed model still encodes within cosine 0.99 of fp32
    mixed = Encoder(model_id="toy", model_key=encoder.model_key, model=model, tokenizer=encoder.tokenizer,
                    image_processor=encoder.image_processor, device="cpu", precision="int8", batch_size=8,
                    text_precision="bf16")  # fmt: skip
    reference = Encoder.load("toy", device="cpu", precision="fp32")
    pictures, captions = _pictures_and_captions()
    assert float((mixed.encode_images(pictures) * reference.encode_images(pictures)).sum(1).min()) >= 0.99
    assert float((mixed.encode_texts(captions) * reference.encode_texts(captions)).sum(1).min()) >= 0.99


def test_bf16_is_ruled_out_by_a_matrix_product_where_it_is_emulated(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(precision_mod, "bf16_matmul_speedup", lambda repeats=5: 0.2)
    choice = Encoder.load("toy", device="cpu", precision="auto", choice_cache_dir=tmp_path).precision_choice
    assert choice.measured["bf16"] == {"kept": False, "reason": "bf16 matrix products run at 0.20x fp32 here"}
    assert "bf16" not in (choice.image, choice.text)
