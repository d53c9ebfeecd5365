"""The user's own adapters on tiny weights: trained from real takes (two giant walks), switched in
place with the default coming back to the bit, exported as one file and imported back, refused
when damaged, cut short or made for another model, and stopped part way with the steps done
kept; through the engine, a real server process on 127.0.0.1 and the CLI."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from conftest import DATA, ROOT, needs_backend

try:
    from backend import studio
except ImportError:  # the add-on's Python on Blender 5.1+; these tests are skipped there
    studio = None

pytestmark = needs_backend
GIANT = sorted((DATA / "styles").glob("*walk_giant_*.bvh"))
CAPTIONS = ["a giant walks forward heavily", "a huge person strides forward slowly"]


@pytest.fixture(scope="module")
def walks():
    from motioncore import canonical, read_bvh

    return [canonical.to_canonical(read_bvh(p)) for p in GIANT]


@pytest.fixture(scope="module")
def engine(tiny_weights, tmp_path_factory):
    from backend.engine import Engine

    return Engine(tiny_weights, device="cpu", adapters=tmp_path_factory.mktemp("adapters"))


@pytest.fixture(scope="module")
def giant(engine, walks):
    return studio.train_adapter(engine, "giant", walks, CAPTIONS, steps=4, batch=2)


def merged_weights(engine):
    return [m.weight.detach().clone() for m in engine._lora.values()] + [
        engine.model.new_tokens.weight.detach().clone()] + [
        v.detach().clone() for v in engine.tokenizer.decoder.state_dict().values()]


def round_trip_cm(engine, motions):
    """Each clip through the engine's tokenizer and back: mean joint error (cm)."""
    from motioncore import canonical, features
    from motioncore.metrics import mpjpe

    errors = []
    for m in motions:
        f = features.to_features(m.resample(canonical.MODEL_FPS))
        back = engine.tokenizer.decode(engine.tokenizer.encode(f))[: len(f)]
        errors.append(100 * mpjpe(features.from_features(back, canonical.MODEL_FPS),
                                  features.from_features(f, canonical.MODEL_FPS)))
    return float(np.mean(errors))


def take(engine, text="a person walks", seed=3):
    return engine.generate(text, 2.0, seed=seed)[0].local_rotations


def test_training_writes_an_adapter_with_its_record_and_report(engine, giant, walks):
    from backend import adapters as store

    folder = store.folder_of("giant", engine.adapters)
    assert giant["steps"] == 4 and giant["clips"] == 2 and giant["captions"] == CAPTIONS and giant["stopped"] is None
    assert giant["tokenizer_sha256"] == engine.identity["tokenizer_sha256"]
    report = giant["report"]
    assert report["clips"] == 2 and set(report["reconstruction_cm"]) == {"default", "giant"}
    assert all(np.isfinite(v) and v > 0 for v in report["reconstruction_cm"].values())
    assert set(report["nearest_distance"]) == {"default", "giant"} and report["nearest_distance_ratio"] > 0
    assert (folder / "report.png").stat().st_size > 10_000
    listed = engine.adapters_list()
    assert [a["name"] for a in listed] == ["default", "giant"] and listed[1]["steps"] == 4
    assert not list(engine.adapters.glob(".training-*"))  # the work folder is gone once the adapter is there
    assert not (folder / "generator_checkpoint").exists()


def test_the_adapter_decodes_its_own_clips_closer_with_the_same_codes(engine, giant, walks):
    """Its decoder was tuned on the clips; the encoder (so the codes) is the model's."""
    from backend import adapters as store
    from backend.models.tokenizer import DECODER_FILE
    from motioncore import canonical, features

    assert giant["decoder"]["steps"] == giant["decoder"]["steps_asked"] > 0
    assert (store.folder_of("giant", engine.adapters) / DECODER_FILE).is_file()
    f = features.to_features(walks[0].resample(canonical.MODEL_FPS))
    codes, default_cm = engine.tokenizer.encode(f), round_trip_cm(engine, walks)
    engine.use_adapter("giant")
    try:
        assert np.array_equal(engine.tokenizer.encode(f), codes)
        assert round_trip_cm(engine, walks) < 0.97 * default_cm
    finally:
        engine.use_adapter("default")
    assert round_trip_cm(engine, walks) == default_cm


def test_switching_changes_results_and_the_default_comes_back_to_the_bit(engine, giant):
    before, first = merged_weights(engine), take(engine)
    assert engine.use_adapter("giant")["name"] == "giant" and engine.info()["adapter"] == "giant"
    changed = take(engine)
    assert not np.array_equal(changed, first)
    engine.use_adapter("default")
    assert all(torch.equal(a, b) for a, b in zip(before, merged_weights(engine)))
    assert np.array_equal(take(engine), first)


def test_an_adapter_loads_at_start_as_it_does_when_switched(engine, giant, tiny_weights):
    from backend.engine import Engine

    engine.use_adapter("giant")
    try:
        switched = take(engine)
    finally:
        engine.use_adapter("default")
    started = Engine(tiny_weights, device="cpu", adapters=engine.adapters, adapter="giant")
    assert started.adapter == "giant" and np.array_equal(take(started), switched)


def test_export_and_import_give_the_same_adapter(engine, giant, tmp_path):
    from backend import adapters as store

    out = store.export("giant", tmp_path / "giant.safetensors", engine.adapters)
    assert out["bytes"] == (tmp_path / "giant.safetensors").stat().st_size and len(out["sha256"]) == 64
    with pytest.raises(store.AdapterError, match="exists"):  # never over a file
        store.export("giant", tmp_path / "giant.safetensors", engine.adapters)
    info = store.import_file(tmp_path / "giant.safetensors", engine.identity, name="giant copy", root=engine.adapters)
    assert info["name"] == "giant copy" and info["imported"]["sha256"] == out["sha256"] and info["steps"] == 4
    with pytest.raises(store.AdapterError, match="exists"):
        store.import_file(tmp_path / "giant.safetensors", engine.identity, root=engine.adapters)
    try:
        engine.use_adapter("giant")
        a = take(engine)
        engine.use_adapter("giant copy")
        assert np.array_equal(take(engine), a)  # through the same LoRA, new token rows and decoder
        assert (engine.adapters / "giant copy" / "decoder.safetensors").is_file()
    finally:
        engine.use_adapter("default")
        store.remove("giant copy", engine.adapters)


def _flip_a_byte_in_the_tensors(path):
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped", "truncated", "not safetensors", "not ours"])
def test_damaged_files_are_refused_and_nothing_is_added(engine, giant, tmp_path, damage):
    from safetensors.torch import save_file

    from backend import adapters as store

    path = tmp_path / "bad.safetensors"
    store.export("giant", path, engine.adapters)
    if damage == "flipped":
        _flip_a_byte_in_the_tensors(path)
        why = "damaged"
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        why = "not a readable safetensors"
    elif damage == "not safetensors":
        path.write_bytes(b"PK\x03\x04 a zip, renamed")
        why = "not a readable safetensors"
    else:
        path.unlink()
        save_file({"w": torch.zeros(3)}, str(path), metadata={"format": "pt"})
        why = "not a DynamicPose adapter"
    before = sorted(p.name for p in engine.adapters.iterdir())
    with pytest.raises(store.AdapterError, match=why):
        store.import_file(path, engine.identity, name="bad", root=engine.adapters)
    assert sorted(p.name for p in engine.adapters.iterdir()) == before


def test_an_adapter_made_for_another_model_is_refused(engine, giant, tiny_weights, walks, tmp_path):
    """Another tokenizer (its codes mean other things) or another base: refused on import and
    on select, saying which."""
    from backend import adapters as store
    from backend.engine import Engine
    from backend.models import weights_file
    from backend.models.tokenizer import MotionTokenizer, TokenizerConfig
    from motioncore.features import LAYOUT

    other = tmp_path / "other"
    shutil.copytree(tiny_weights, other)
    torch.manual_seed(9)
    tok = MotionTokenizer(TokenizerConfig(quantizer="fsq", width=32, fsq_levels=[4, 4, 2])).eval()
    tok.set_statistics(np.zeros(LAYOUT.size), np.ones(LAYOUT.size))
    tok.save_pretrained(other)
    foreign = Engine(other, device="cpu", adapters=tmp_path / "theirs")
    studio.train_adapter(foreign, "theirs", walks[:1], CAPTIONS[:1], steps=1, batch=1, report=False)
    store.export("theirs", tmp_path / "theirs.safetensors", foreign.adapters)
    with pytest.raises(store.AdapterError, match="another model's motion tokenizer"):
        store.import_file(tmp_path / "theirs.safetensors", engine.identity, root=engine.adapters)
    # Copied in by hand: the engine still refuses it before touching its weights.
    shutil.copytree(foreign.adapters / "theirs", engine.adapters / "theirs")
    before = merged_weights(engine)
    try:
        with pytest.raises(store.AdapterError, match="does not fit this model"):
            engine.use_adapter("theirs")
        assert engine.adapter == "default" and all(torch.equal(a, b) for a, b in zip(before, merged_weights(engine)))
    finally:
        shutil.rmtree(engine.adapters / "theirs")
    moved = dict(engine.identity, config={**engine.identity["config"], "base": "/somewhere/else"})
    with pytest.raises(store.AdapterError, match="needs the base"):
        store.import_file(tmp_path / "theirs.safetensors", {**moved, "tokenizer_sha256":
                                                            foreign.identity["tokenizer_sha256"]})
    weights_file.check_sums(other)


def test_a_decoder_of_another_shape_is_refused_before_anything_changes(engine, giant):
    from safetensors.torch import save_file

    from backend import adapters as store
    from backend.models import weights_file

    folder = engine.adapters / "misfit"
    shutil.copytree(store.folder_of("giant", engine.adapters), folder)
    try:
        decoder = weights_file.read_tensors(folder / "decoder.safetensors")
        first = next(iter(decoder))
        decoder[first] = decoder[first][..., :1].contiguous()
        save_file(decoder, str(folder / "decoder.safetensors"))
        weights_file.write_sums(folder)
        before = merged_weights(engine)
        with pytest.raises(store.AdapterError, match="does not fit this model's layers"):
            engine.use_adapter("misfit")
        assert engine.adapter == "default" and all(torch.equal(a, b) for a, b in zip(before, merged_weights(engine)))
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("name", ["", "default", "../up", "a/b", "x" * 64, "dot.", " lead"])
def test_bad_names_are_refused_before_any_training(engine, walks, name):
    with pytest.raises(ValueError, match="adapter name|shipped model"):
        studio.train_adapter(engine, name, walks, CAPTIONS, steps=1)


def test_bad_training_input_is_refused(engine, walks, giant):
    with pytest.raises(ValueError, match="exists"):
        studio.train_adapter(engine, "giant", walks, CAPTIONS, steps=1)
    with pytest.raises(ValueError, match="one caption per clip"):
        studio.train_adapter(engine, "x", walks, CAPTIONS[:1], steps=1)
    with pytest.raises(ValueError, match="at least one clip a caption"):
        studio.train_adapter(engine, "x", walks, ["", " "], steps=1)
    with pytest.raises(ValueError, match="steps"):
        studio.train_adapter(engine, "x", walks, CAPTIONS, steps=0)
    with pytest.raises(ValueError, match="at most"):
        studio.train_adapter(engine, "x", walks * 16, CAPTIONS * 16, steps=1)  # 32 clips, far more than 120 s
    assert [a["name"] for a in engine.adapters_list()] == ["default", "giant"]


def test_a_stop_keeps_the_steps_done_as_a_usable_adapter(engine, walks):
    from backend.jobs import Cancelled

    seen = []

    def on_step(done, total):
        seen.append(done)
        if done >= 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        studio.train_adapter(engine, "stopped", walks, CAPTIONS, steps=500, batch=1, on_step=on_step)
    info = next(a for a in engine.adapters_list() if a["name"] == "stopped")
    assert info["steps"] == 3 and info["steps_asked"] == 500 and info["stopped"] == "cancelled"
    engine.use_adapter("stopped")
    try:
        assert np.isfinite(take(engine)).all()
    finally:
        engine.use_adapter("default")
        from backend import adapters as store

        store.remove("stopped", engine.adapters)


# -- over HTTP, against a real server process -----------------------------------------------

@pytest.fixture(scope="module")
def server(tiny_weights, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server_adapters")
    env = dict(os.environ, PYTHONPATH=str(ROOT), DYNAMICPOSE_ADAPTERS=str(folder))
    proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--weights", str(tiny_weights),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    yield {**json.loads(line), "proc": proc, "folder": folder}
    proc.kill()
    proc.wait()


def client(server):
    from tools.addon_import import import_addon

    import_addon()
    from dynamic_pose.client import HTTPBackend

    return HTTPBackend(server["url"], server["token"])


def test_http_trains_lists_selects_and_every_answer_names_its_adapter(server, walks, tmp_path):
    http = client(server)
    from dynamic_pose.motioncore.wire import from_wire, to_wire  # the add-on's own copy, as Blender sends

    clips = [(from_wire(to_wire(m)), c, f"take {i}") for i, (m, c) in enumerate(zip(walks, CAPTIONS))]
    reports, progress = [], []
    info = http.train_adapter("giant", clips, steps=3, batch=2, progress=progress.append, report=reports.append)
    assert info["steps"] == 3 and info["sources"] == ["take 0", "take 1"] and "report" in info
    assert reports and {"step", "steps", "loss", "seconds_left"} <= set(reports[-1]) and progress
    listing = http.adapters()
    assert [a["name"] for a in listing["adapters"]] == ["default", "giant"] and listing["in_use"] == "default"
    default = http.generate("a person walks", 2.0, seed=4)[0]
    assert http.last_adapter == "default"
    assert http.use_adapter("giant") == "giant" and http.adapters()["in_use"] == "giant"
    mine = http.generate("a person walks", 2.0, seed=4)[0]
    assert http.last_adapter == "giant" and not np.array_equal(mine.local_rotations, default.local_rotations)
    out = http.export_adapter("giant", str(tmp_path / "g.safetensors"))
    assert (tmp_path / "g.safetensors").stat().st_size == out["bytes"]
    assert http.import_adapter(str(tmp_path / "g.safetensors"), name="g2")["name"] == "g2"
    from dynamic_pose.client.protocol import BackendError

    with pytest.raises(BackendError, match="in use"):
        http.remove_adapter("giant")
    with pytest.raises(BackendError, match="absolute path"):
        http.export_adapter("giant", "relative.safetensors")
    with pytest.raises(BackendError, match="no adapter named"):
        http.use_adapter("nobody")
    http.remove_adapter("g2")
    assert http.use_adapter("default") == "default"
    again = http.generate("a person walks", 2.0, seed=4)[0]
    assert np.array_equal(again.local_rotations, default.local_rotations)


def test_http_cancel_keeps_the_steps_done(server, walks):
    http = client(server)
    cancel = threading.Event()
    seen = []

    def report(p):
        seen.append(p["step"])
        if p["step"] >= 2:
            cancel.set()

    from dynamic_pose.client.protocol import Cancelled

    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        http.train_adapter("halfway", [(walks[0], CAPTIONS[0], "")], steps=2000, batch=1, cancel=cancel, report=report)
    assert time.monotonic() - t0 < 60
    kept = next(a for a in http.adapters()["adapters"] if a["name"] == "halfway")
    assert 2 <= kept["steps"] < 2000 and kept["stopped"] == "cancelled"
    assert http.use_adapter("halfway") == "halfway"
    assert np.isfinite(http.generate("a person walks", 1.0)[0].local_rotations).all()
    http.use_adapter("default")


def test_http_refuses_bad_training_requests(server):
    from test_server import call

    ok_motion = {"fps": 20.0, "root_position": [[0, 0, 1]] * 3, "local_rotations": [[[1, 0, 0, 0]] * 21] * 3}
    for body, where in [({"name": "../x", "clips": [{"motion": ok_motion, "caption": "a"}]}, "name"),
                        ({"name": "x", "clips": []}, "clips"),
                        ({"name": "x", "clips": [{"motion": ok_motion, "caption": "a"}], "steps": 0}, "steps"),
                        ({"name": "x", "clips": [{"motion": ok_motion, "caption": "a"}] * 33}, "clips")]:
        status, answer = call(server, "POST", "/v1/adapters/train", body)
        assert status == 422 and where in json.dumps(answer), (body, answer)
    status, answer = call(server, "POST", "/v1/adapters/import", {"path": "/no/such.safetensors"})
    assert status == 400 and "not a file" in answer["detail"]


# -- the CLI --------------------------------------------------------------------------------

def test_cli_trains_lists_exports_and_imports(tiny_weights, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), DYNAMICPOSE_ADAPTERS=str(tmp_path / "adapters"),
               DYNAMICPOSE_CACHE=str(tmp_path / "cache"))

    def dp(*args):
        run = subprocess.run([sys.executable, "-m", "backend", *args], capture_output=True, text=True, env=env,
                             cwd=ROOT, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        return run.stdout

    said = dp("train", "adapter", "--data", str(DATA / "styles"), "--name", "giant", "--steps", "2", "--batch", "2",
              "--base-model", str(tiny_weights))
    assert "--adapter 'giant'" in said and "Backend panel" in said
    assert "giant: 2 clips, 2 steps" in dp("adapters", "list")
    dp("adapters", "export", "giant", str(tmp_path / "g.safetensors"))
    dp("adapters", "import", str(tmp_path / "g.safetensors"), "--name", "shared", "--weights", str(tiny_weights))
    assert "shared: 2 clips" in dp("adapters", "list")
    out = tmp_path / "take.bvh"
    dp("generate", "--text", "a giant walks", "--seconds", "1", "--weights", str(tiny_weights), "--adapter", "shared",
       "--out", str(out), "--device", "cpu")
    assert out.stat().st_size > 1000
