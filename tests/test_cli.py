"""The command line's options come from the config dataclasses: each default and its help are
written once, on the field, and the parser offers exactly them."""
import dataclasses

import pytest

from backend import cli
from backend.models.generator import GeneratorConfig
from backend.models.tokenizer import TokenizerConfig
from backend.sampling import Sampling
from backend.training.evaluator import EvaluatorTraining
from backend.training.generator import GeneratorTraining
from backend.training.inbetweener import InbetweenerTraining
from backend.training.length import LengthTraining
from backend.training.tokenizer import TokenizerTraining

COMMANDS = [
    (["train", "tokenizer"], [(TokenizerConfig, cli.TOKENIZER_SHAPE), (TokenizerTraining, cli.TOKENIZER_TRAINING)]),
    (["train", "generator"], [(GeneratorTraining, cli.GENERATOR_TRAINING), (GeneratorConfig, cli.GENERATOR_SHAPE)]),
    (["train", "inbetweener"], [(InbetweenerTraining, cli.INBETWEENER_TRAINING)]),
    (["train", "evaluator"], [(EvaluatorTraining, cli.EVALUATOR_TRAINING)]),
    (["train", "length"], [(LengthTraining, cli.LENGTH_TRAINING)]),
    (["generate", "--text", "a walk", "--out", "x.bvh"], [(Sampling, cli.SAMPLING)]),
]


def _default(cls, name):
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f, f.default if f.default is not dataclasses.MISSING else f.default_factory()


@pytest.mark.parametrize("argv, groups", COMMANDS, ids=[" ".join(c[0][:2]) for c in COMMANDS])
def test_options_are_the_fields(argv, groups):
    parser = cli.build_parser()
    args = parser.parse_args(argv)
    sub = parser._subparsers._group_actions[0].choices[argv[0]]
    if argv[0] == "train":
        sub = sub._subparsers._group_actions[0].choices[argv[1]]
    helps = {a.dest: a.help or "" for a in sub._actions}
    for cls, names in groups:
        for name in names:
            f, default = _default(cls, name)
            assert getattr(args, name) == default, (cls.__name__, name)
            assert f.metadata.get("help") and f.metadata["help"] in helps[name], (cls.__name__, name)


def test_a_given_option_reaches_the_config():
    args = cli.build_parser().parse_args(["train", "generator", "--lr", "1e-4", "--word-noise", "0",
                                          "--lora-r", "8"])
    training = GeneratorTraining(**cli.picked(args, GeneratorTraining, cli.GENERATOR_TRAINING))
    assert training.lr == 1e-4 and training.word_noise == 0.0
    assert GeneratorConfig(**cli.picked(args, GeneratorConfig, cli.GENERATOR_SHAPE)).lora_r == 8
    off = cli.build_parser().parse_args(["train", "evaluator", "--no-mirror"])
    assert EvaluatorTraining(**cli.picked(off, EvaluatorTraining, cli.EVALUATOR_TRAINING)).mirror is False
