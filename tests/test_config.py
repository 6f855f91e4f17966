"""damgraph.config: the checks of every setting, the model presets, the
config id of stored runs and the command-line flags derived from the fields."""
import argparse
import math
from dataclasses import fields

import pytest

from damgraph.config import (CONVS, DECODERS, GATES, MODEL_FAMILIES, LinkPredConfig, NodeClfConfig,
                             add_config_arguments, config_id, model_config)
from damgraph.settings import settings_from_args

LINKPRED_FIELDS = [f.name for f in fields(LinkPredConfig)]
NODECLF_FIELDS = [f.name for f in fields(NodeClfConfig)]

# One value of the wrong type per field, and the TypeError it raises.
LINKPRED_WRONG_TYPES = {
    "model": (1, "model must be a string, got 1"),
    "dim": (16.0, "dim must be an integer, got 16.0"),
    "hidden": ("64", "hidden must be an integer, got '64'"),
    "num_layers": (True, "num_layers must be an integer, got True"),
    "dropout": ("0.5", "dropout must be a number, got '0.5'"),
    "gate": (0, "gate must be a string, got 0"),
    "gate_hidden": (1, "gate_hidden must be True or False, got 1"),
    "matryoshka": ("yes", "matryoshka must be True or False, got 'yes'"),
    "lam": (None, "lam must not be None"),
    "lr": (False, "lr must be a number, got False"),
    "beta_lr": ([0.2], "beta_lr must be a number, got \\[0.2\\]"),
    "gate_alpha": ("2", "gate_alpha must be a number, got '2'"),
    "gate_delay": (0.1, "gate_delay must be an integer, got 0.1"),
    "rewind": (1, "rewind must be True or False, got 1"),
    "settle": (50.0, "settle must be an integer, got 50.0"),
    "weight_decay": (None, "weight_decay must not be None"),
    "epochs": (10.5, "epochs must be an integer, got 10.5"),
    "patience": ("5", "patience must be an integer, got '5'"),
    "min_epochs": (2.0, "min_epochs must be an integer, got 2.0"),
    "val_window": ("3", "val_window must be an integer, got '3'"),
    "val_tolerance": ("0.01", "val_tolerance must be a number, got '0.01'"),
    "val_min_delta": (None, "val_min_delta must not be None"),
    "val_metric": (20, "val_metric must be a string, got 20"),
    "seed": (None, "seed must not be None"),
    "device": (0, "device must be a string, got 0"),
    "mask_ratio": ("0.5", "mask_ratio must be a number, got '0.5'"),
    "decoder": (None, "decoder must not be None"),
    "conv": (["gcn"], "conv must be a string, got \\['gcn'\\]"),
    "batch_norm": (0, "batch_norm must be True or False, got 0"),
    "activation": (None, "activation must not be None"),
    "masking": (2, "masking must be a string, got 2"),
    "walk_length": (3.0, "walk_length must be an integer, got 3.0"),
    "degree_weight": ("0", "degree_weight must be a number, got '0'"),
    "decoder_hidden": (None, "decoder_hidden must not be None"),
    "decoder_dropout": (True, "decoder_dropout must be a number, got True"),
    "grad_clip": ("1", "grad_clip must be a number, got '1'"),
    "mode": (0, "mode must be a string, got 0"),
    "hops": (2.0, "hops must be an integer, got 2.0"),
    "batch_size": (None, "batch_size must not be None"),
    "pos_batch_size": (1.5, "pos_batch_size must be an integer, got 1.5"),
    "inputs": (1, "inputs must be a string, got 1"),
    "positives": (True, "positives must be a string, got True"),
    "window": (2.5, "window must be an integer, got 2.5"),
    "dropout_input": ("no", "dropout_input must be True or False, got 'no'"),
    "gate_inputs": (0, "gate_inputs must be True or False, got 0"),
    "val_every": (5.0, "val_every must be an integer, got 5.0"),
    "input_dim": ("64", "input_dim must be an integer, got '64'"),
    "tie_widths": (1, "tie_widths must be True or False, got 1"),
    "decoder_dropout_at": (0, "decoder_dropout_at must be a string, got 0"),
    "clip_per_part": ("yes", "clip_per_part must be True or False, got 'yes'"),
    "rewind_epochs": (1, "rewind_epochs must be a string, got 1"),
    "rewind_gains": (1, "rewind_gains must be a string, got 1"),
    "penalty_edges": (4096.0, "penalty_edges must be an integer, got 4096.0"),
}

# Values out of range, and the ValueError they raise (the range in the message).
LINKPRED_OUT_OF_RANGE = [
    ("dim", 0, "dim must be >= 1, got 0"),
    ("hidden", 0, "hidden must be >= 1, got 0"),
    ("num_layers", -1, "num_layers must be >= 1, got -1"),
    ("dropout", 1.0, "dropout must be in \\[0, 1\\), got 1.0"),
    ("dropout", -0.1, "dropout must be in \\[0, 1\\), got -0.1"),
    ("lam", -1, "lam must be >= 0, got -1"),
    ("penalty_edges", -1, "penalty_edges must be >= 0, got -1"),
    ("lam", float("nan"), "lam must be a finite number, got nan"),
    ("lam", float("inf"), "lam must be a finite number, got inf"),
    ("lr", -0.01, "lr must be >= 0, got -0.01"),
    ("beta_lr", -1e-9, "beta_lr must be >= 0, got -1e-09"),
    ("gate_alpha", 0.0, "gate_alpha must be > 0, got 0.0"),
    ("gate_delay", -1, "gate_delay must be >= 0, got -1"),
    ("settle", -1, "settle must be >= 0, got -1"),
    ("weight_decay", -5e-4, "weight_decay must be >= 0, got -0.0005"),
    ("epochs", 0, "epochs must be >= 1, got 0"),
    ("patience", 0, "patience must be >= 1, got 0"),
    ("min_epochs", 0, "min_epochs must be >= 1, got 0"),
    ("val_window", -1, "val_window must be >= 1, got -1"),
    ("val_tolerance", -0.01, "val_tolerance must be >= 0, got -0.01"),
    ("val_min_delta", -0.001, "val_min_delta must be >= 0, got -0.001"),
    ("seed", -1, "seed must be in \\[0, 4294967295\\], got -1"),
    ("seed", 2 ** 32, "seed must be in \\[0, 4294967295\\], got 4294967296"),
    ("mask_ratio", 0, "mask_ratio must be in \\(0, 1\\), got 0"),
    ("mask_ratio", 1.0, "mask_ratio must be in \\(0, 1\\), got 1.0"),
    ("walk_length", 0, "walk_length must be >= 1, got 0"),
    ("window", 0, "window must be >= 1, got 0"),
    ("degree_weight", -0.002, "degree_weight must be >= 0, got -0.002"),
    ("decoder_hidden", 0, "decoder_hidden must be >= 1, got 0"),
    ("decoder_dropout", 1, "decoder_dropout must be in \\[0, 1\\), got 1"),
    ("grad_clip", -1.0, "grad_clip must be >= 0, got -1.0"),
    ("hops", 0, "hops must be >= 1, got 0"),
    ("batch_size", 0, "batch_size must be >= 1, got 0"),
    ("pos_batch_size", 0, "pos_batch_size must be >= 1, got 0"),
    ("val_every", 0, "val_every must be >= 1, got 0"),
    ("input_dim", 0, "input_dim must be >= 1, got 0"),
]

LINKPRED_UNKNOWN_CHOICES = [
    ("model", "gcn", "unknown model 'gcn': use one of gae, vgae, maskgae, sage-mlp, gcn-mlp"),
    ("gate", "none", "unknown gate 'none': use one of dam, l1, l0"),
    ("decoder", "bilinear", "unknown decoder 'bilinear': use one of inner, mlp"),
    ("conv", "gin", "unknown conv 'gin': use one of gcn, sage, gat"),
    ("activation", "tanh", "unknown activation 'tanh': use one of relu, elu"),
    ("masking", "node", "unknown masking 'node': use one of edge, path"),
    ("mode", "sampled", "unknown mode 'sampled': use one of full, precomputed"),
    ("val_metric", "hits@30", "unknown val_metric 'hits@30': use one of auc, hits@20, hits@50, hits@100"),
    ("inputs", "random", "unknown inputs 'random': use one of learned, spectral, spectral-fixed, projection"),
    ("positives", "paths", "unknown positives 'paths': use one of edges, walks"),
    ("decoder_dropout_at", "output", "unknown decoder_dropout_at 'output': use one of input, hidden"),
    ("rewind_epochs", "some", "unknown rewind_epochs 'some': use one of rest, all"),
    ("rewind_gains", "half", "unknown rewind_gains 'half': use one of gate, one"),
]


def test_every_linkpred_field_is_covered_by_the_tables():
    assert sorted(LINKPRED_WRONG_TYPES) == sorted(LINKPRED_FIELDS)
    ranged = {name for name, _, _ in LINKPRED_OUT_OF_RANGE} | {name for name, _, _ in LINKPRED_UNKNOWN_CHOICES}
    bounded = {f.name for f in fields(LinkPredConfig) if f.metadata["low"] is not None or f.metadata["choices"]}
    assert ranged == bounded


@pytest.mark.parametrize("name", LINKPRED_FIELDS)
def test_a_wrong_type_is_a_type_error_naming_the_field(name):
    value, message = LINKPRED_WRONG_TYPES[name]
    with pytest.raises(TypeError, match=f"^{message}$"):
        LinkPredConfig(**{name: value})


@pytest.mark.parametrize("name, value, message", LINKPRED_OUT_OF_RANGE)
def test_out_of_range_is_a_value_error_naming_the_field_and_the_range(name, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        LinkPredConfig(**{name: value})


@pytest.mark.parametrize("name, value, message", LINKPRED_UNKNOWN_CHOICES)
def test_an_unknown_choice_lists_the_choices(name, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        LinkPredConfig(**{name: value})


def test_values_at_the_edges_of_the_ranges_are_accepted():
    config = LinkPredConfig(dim=1, hidden=None, gate=None, dropout=0, lam=0, lr=0.0, seed=2 ** 32 - 1,
                            mask_ratio=0.999, decoder_dropout=0.999, num_layers=1, epochs=1, patience=1)
    assert config.hidden is None and config.gate is None and config.dropout == 0
    assert LinkPredConfig(dim=7, lam=1).lam == 1  # an integer is a number
    for name, value, _ in LINKPRED_UNKNOWN_CHOICES:  # every listed choice is accepted
        choices = next(f.metadata["choices"] for f in fields(LinkPredConfig) if f.name == name)
        for choice in choices:
            assert getattr(LinkPredConfig(**{name: choice}), name) == choice
    assert (tuple(MODEL_FAMILIES), tuple(GATES), tuple(CONVS), DECODERS) == (("gae", "vgae", "maskgae", "sage-mlp", "gcn-mlp"),
                                                       ("dam", "l1", "l0"), ("gcn", "sage", "gat"), ("inner", "mlp"))


@pytest.mark.parametrize("name, value", [("model", "vgae"), ("model", "maskgae"), ("conv", "sage"),
                                         ("num_layers", 3), ("gate_hidden", True), ("batch_norm", True),
                                         ("dropout", 0.5), ("activation", "elu")])
def test_precomputed_mode_refuses_what_the_sign_encoder_lacks(name, value):
    message = (f"^mode 'precomputed' trains a GAE on a SIGN encoder and supports {name}=.* only, "
               f"got {value!r}; use mode 'full'$")
    with pytest.raises(ValueError, match=message):
        LinkPredConfig(mode="precomputed", **{name: value})
    LinkPredConfig(mode="full", **{name: value})  # fine in full mode
    LinkPredConfig(mode="precomputed", hops=3, batch_size=1024, gate="l1", decoder="mlp", matryoshka=True)


def test_degree_weight_needs_maskgae():
    for model in ("gae", "vgae"):
        with pytest.raises(ValueError, match="^degree_weight needs a model that masks edges.*set it to 0 or use model"):
            LinkPredConfig(model=model, degree_weight=0.1)
    assert LinkPredConfig(model="maskgae", degree_weight=0.1).degree_weight == 0.1


# -- NodeClfConfig ------------------------------------------------------------
NODECLF_CASES = [
    ("hidden", 64.0, TypeError, "hidden must be an integer, got 64.0"),
    ("hidden", 0, ValueError, "hidden must be >= 1, got 0"),
    ("num_layers", None, TypeError, "num_layers must not be None"),
    ("num_layers", 0, ValueError, "num_layers must be >= 1, got 0"),
    ("dropout", "0.5", TypeError, "dropout must be a number, got '0.5'"),
    ("dropout", 1.0, ValueError, "dropout must be in \\[0, 1\\), got 1.0"),
    ("dam", "no", TypeError, "dam must be True or False, got 'no'"),
    ("lam", float("nan"), ValueError, "lam must be a finite number, got nan"),
    ("lam", -1, ValueError, "lam must be >= 0, got -1"),
    ("lr", None, TypeError, "lr must not be None"),
    ("lr", -0.1, ValueError, "lr must be >= 0, got -0.1"),
    ("beta_lr", True, TypeError, "beta_lr must be a number, got True"),
    ("beta_lr", -0.2, ValueError, "beta_lr must be >= 0, got -0.2"),
    ("weight_decay", "5e-4", TypeError, "weight_decay must be a number, got '5e-4'"),
    ("weight_decay", -1.0, ValueError, "weight_decay must be >= 0, got -1.0"),
    ("epochs", 1.5, TypeError, "epochs must be an integer, got 1.5"),
    ("epochs", 0, ValueError, "epochs must be >= 1, got 0"),
    ("patience", None, TypeError, "patience must not be None"),
    ("patience", -3, ValueError, "patience must be >= 1, got -3"),
    ("seed", None, TypeError, "seed must not be None"),
    ("seed", -1, ValueError, "seed must be in \\[0, 4294967295\\], got -1"),
    ("device", None, TypeError, "device must not be None"),
    ("device", 1, TypeError, "device must be a string, got 1"),
]


def test_every_nodeclf_field_is_covered():
    assert {name for name, *_ in NODECLF_CASES} == set(NODECLF_FIELDS)


@pytest.mark.parametrize("name, value, error, message", NODECLF_CASES)
def test_nodeclf_settings_are_checked(name, value, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        NodeClfConfig(**{name: value})


def test_nodeclf_defaults():
    config = NodeClfConfig()
    assert (config.hidden, config.num_layers, config.dropout, config.dam, config.lam, config.lr) == \
        (64, 2, 0.5, True, 0.05, 0.01)
    assert (config.beta_lr, config.weight_decay, config.epochs, config.patience, config.seed, config.device) == \
        (0.2, 5e-4, 400, 100, 0, "cpu")


# -- presets ------------------------------------------------------------------
@pytest.mark.parametrize("model", list(MODEL_FAMILIES))
def test_model_config_applies_the_preset(model):
    config = model_config(model)
    defaults = LinkPredConfig()
    assert config.model == model
    for f in fields(LinkPredConfig):
        if f.name == "model":
            continue
        expected = MODEL_FAMILIES[model].preset.get(f.name, getattr(defaults, f.name))
        assert getattr(config, f.name) == expected, f.name


def test_maskgae_preset_values():
    config = model_config("maskgae")
    assert (config.decoder, config.decoder_hidden, config.decoder_dropout, config.masking, config.mask_ratio) == \
        ("mlp", 32, 0.3, "path", 0.7)
    assert (config.degree_weight, config.dropout, config.hidden, config.batch_norm, config.activation) == \
        (0.002, 0.5, 128, True, "elu")
    assert (config.weight_decay, config.grad_clip, config.epochs, config.patience, config.lam) == \
        (5e-5, 1.0, 800, 300, 0.1)
    assert MODEL_FAMILIES["gae"].preset == MODEL_FAMILIES["vgae"].preset == {}


def test_explicit_settings_win_over_the_preset():
    config = model_config("maskgae", lam=0.5, decoder="inner", epochs=3, dim=16)
    assert (config.lam, config.decoder, config.epochs, config.dim) == (0.5, "inner", 3, 16)
    assert config.batch_norm and config.masking == "path"  # the rest of the preset stays
    with pytest.raises(ValueError, match="^degree_weight needs a model that masks edges"):
        model_config("gae", degree_weight=0.002)


def test_unknown_settings_and_models_are_refused():
    with pytest.raises(TypeError, match="^unknown setting\\(s\\) epoch, learning_rate; see damgraph.LinkPredConfig$"):
        model_config("gae", learning_rate=0.1, epoch=3)
    with pytest.raises(ValueError, match="^unknown model 'gat': use one of gae, vgae, maskgae, sage-mlp, gcn-mlp$"):
        model_config("gat")
    with pytest.raises(ValueError, match="^dim must be >= 1, got 0$"):
        model_config("vgae", dim=0)


# -- config_id ----------------------------------------------------------------


def test_config_id_excludes_the_per_run_fields_and_is_stable():
    per_run = ("seed", "device")
    assert config_id(NodeClfConfig(), per_run) == (
        "beta_lr=0.2|dam=True|dropout=0.5|epochs=400|hidden=64|lam=0.05|lr=0.01|num_layers=2|patience=100|"
        "weight_decay=0.0005")
    assert config_id(NodeClfConfig(seed=3, device="cuda"), per_run) == config_id(NodeClfConfig(), per_run)
    assert config_id(NodeClfConfig(hidden=32), per_run) != config_id(NodeClfConfig(), per_run)
    linkpred = config_id(LinkPredConfig(seed=5), ["seed"])
    assert linkpred == config_id(LinkPredConfig(seed=9), ["seed"]) and "seed=" not in linkpred
    keys = [item.split("=")[0] for item in linkpred.split("|")]
    # the settings added later are left out at their neutral value, so stored runs keep their ids
    assert keys == sorted(set(LINKPRED_FIELDS) - {"seed", "min_epochs", "val_window", "val_tolerance", "val_min_delta", "val_metric",
                                                     "pos_batch_size", "inputs", "positives", "window",
                                                     "dropout_input", "gate_inputs", "val_every", "input_dim",
                                                     "tie_widths", "decoder_dropout_at", "clip_per_part",
                                                     "rewind_epochs", "rewind_gains"})
    assert "hidden=None" in linkpred and "gate=dam" in linkpred
    assert config_id(LinkPredConfig(seed=5), []) != linkpred
    assert "|val_window=10|" in config_id(LinkPredConfig(val_window=10), ["seed"])
    assert "|val_tolerance=0.005|" in config_id(LinkPredConfig(val_tolerance=0.005), ["seed"])
    assert "|val_min_delta=0.01|" in config_id(LinkPredConfig(val_min_delta=0.01), ["seed"])
    assert "|val_metric=hits@20|" in config_id(LinkPredConfig(val_metric="hits@20"), ["seed"])
    assert "min_epochs=50" in config_id(LinkPredConfig(min_epochs=50), ["seed"])
    assert "|rewind_gains=one|" in config_id(LinkPredConfig(rewind_gains="one"), ["seed"])
    assert "|pos_batch_size=4096|" in config_id(LinkPredConfig(pos_batch_size=4096), ["seed"])
    assert "|positives=walks|" in config_id(LinkPredConfig(positives="walks"), ["seed"])
    assert config_id(LinkPredConfig(window=3), ["seed"]).endswith("|window=3")


# -- command-line flags -------------------------------------------------------
def _parser(names, config=LinkPredConfig, **overrides):
    parser = argparse.ArgumentParser(prog="test")
    add_config_arguments(parser, names, config, **overrides)
    return parser


def _actions(parser):
    return {a.dest: a for a in parser._actions if a.dest != "help"}


def test_flags_mirror_the_fields():
    actions = _actions(_parser(LINKPRED_FIELDS))
    assert sorted(actions) == sorted(LINKPRED_FIELDS)
    for f in fields(LinkPredConfig):
        action = actions[f.name]
        assert action.default is None, f.name
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            assert action.option_strings == [flag, "--no-" + f.name.replace("_", "-")]
            continue
        assert action.option_strings == [flag]
        assert action.choices == f.metadata["choices"], f.name
        assert action.help.startswith(f.metadata["help"]), f.name
    assert actions["dim"].type is int and actions["hidden"].type is int and actions["lam"].type is float
    assert actions["gate"].type is str and actions["device"].type is str and actions["seed"].type is int
    assert list(actions["conv"].choices) == ["gcn", "sage", "gat"]


def test_help_lists_the_per_model_presets_where_they_differ():
    actions = _actions(_parser(LINKPRED_FIELDS))
    assert actions["epochs"].help == ("most training epochs (a cap: the patience ends a run that has converged) "
                                      "(default: gae 2000, vgae 2000, maskgae 800, sage-mlp 200, gcn-mlp 200)")
    assert "maskgae 800" in actions["epochs"].help
    assert actions["lam"].help.endswith("(default: 0.1)")  # one penalty weight for every model
    assert actions["decoder"].help.endswith("(default: gae inner, vgae inner, maskgae mlp, sage-mlp mlp, gcn-mlp mlp)")
    assert actions["batch_norm"].help.endswith("(default: gae False, vgae False, maskgae True, sage-mlp False, "
                                               "gcn-mlp False)")
    assert actions["dim"].help.endswith("(default: gae 128, vgae 128, maskgae 128, sage-mlp 256, gcn-mlp 256)")
    assert actions["weight_decay"].help.endswith("(default: gae 0.0, vgae 0.0, maskgae 5e-05, sage-mlp 0.0, gcn-mlp 0.0)")
    assert actions["mask_ratio"].help.endswith("(default: 0.7)")  # in maskgae's preset, but the same value
    for name in set(LINKPRED_FIELDS) - set(MODEL_FAMILIES["maskgae"].preset) - set(MODEL_FAMILIES["sage-mlp"].preset):
        assert "maskgae" not in actions[name].help.split("(default:")[-1], name
    nodeclf = _actions(_parser(NODECLF_FIELDS, NodeClfConfig))
    assert nodeclf["hidden"].help == "hidden width of the GCN; the starting width when gated (default: 64)"
    assert nodeclf["dam"].option_strings == ["--dam", "--no-dam"] and nodeclf["dam"].default is None
    custom = _actions(_parser(["model"], model="which model"))
    assert custom["model"].help == "which model (default: gae)"


def test_parsed_flags_become_settings():
    parser = _parser(LINKPRED_FIELDS)
    args = parser.parse_args(["--dim", "16", "--lam", "0.1", "--no-batch-norm", "--gate-hidden", "--conv", "sage"])
    settings = settings_from_args(args, LINKPRED_FIELDS)
    assert settings == {"dim": 16, "lam": 0.1, "batch_norm": False, "gate_hidden": True, "conv": "sage"}
    assert type(settings["dim"]) is int and type(settings["lam"]) is float
    config = model_config("maskgae", **settings)
    assert not config.batch_norm and config.dim == 16 and config.activation == "elu"
    assert settings_from_args(parser.parse_args([]), LINKPRED_FIELDS) == {}
    assert settings_from_args(args, ["dim", "not_a_flag"]) == {"dim": 16}


@pytest.mark.parametrize("argv", [["--conv", "gin"], ["--dim", "16.5"], ["--lam", "much"], ["--model", "gcn"]])
def test_bad_flags_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as err:
        _parser(LINKPRED_FIELDS).parse_args(argv)
    assert err.value.code == 2 and "invalid" in capsys.readouterr().err


def test_nan_from_the_command_line_is_caught_by_the_config():
    args = _parser(["lam"]).parse_args(["--lam", "nan"])
    assert math.isnan(args.lam)
    with pytest.raises(ValueError, match="^lam must be a finite number, got nan$"):
        model_config("gae", **settings_from_args(args, ["lam"]))


def test_a_run_without_a_gate_keeps_its_id_whatever_the_gate_settings():
    from damgraph.config import GATE_SETTINGS, config_id, gateless

    per_run = ["seed"]
    plain = config_id(gateless(LinkPredConfig()), per_run)
    assert not any(f"{name}=" in plain for name in GATE_SETTINGS)  # the ids stored before these settings existed
    assert config_id(gateless(LinkPredConfig(settle=7, gate_alpha=3.0)), per_run) == plain
    assert "|settle=50|" in config_id(LinkPredConfig(), per_run) and "rewind=True" in config_id(LinkPredConfig(), per_run)


@pytest.mark.parametrize("name, value", [("hidden", 32), ("input_dim", 32), ("decoder_hidden", 128)])
def test_tied_widths_refuse_a_width_they_would_ignore(name, value):
    """With tie_widths (the OGB presets) every width is dim: a hidden,
    input or decoder width given beside it is refused, not ignored."""
    from damgraph.config import model_config

    with pytest.raises(ValueError, match=f"^tie_widths makes every width dim \\(256\\), got {name}={value}; "
                                         f"unset {name} or set tie_widths False$"):
        model_config("sage-mlp", **{name: value})
    assert getattr(model_config("sage-mlp", **{name: value}, tie_widths=False), name) == value


def test_a_registered_model_family_is_a_choice_with_its_preset_and_its_checks():
    from damgraph.config import ModelFamily, register_model
    from damgraph.models import MaskGAE, autoencoder_class

    register_model("toy-masked", ModelFamily("damgraph.models:MaskGAE", {"epochs": 7}, masks_edges=True))
    try:
        assert model_config("toy-masked").epochs == 7 and autoencoder_class("toy-masked") is MaskGAE
        assert LinkPredConfig(model="toy-masked", degree_weight=0.1).degree_weight == 0.1  # masks edges
        with pytest.raises(ValueError, match="positives 'walks' trains a model on its given positives"):
            LinkPredConfig(model="toy-masked", positives="walks")
        with pytest.raises(ValueError, match="registered already"):
            register_model("toy-masked", ModelFamily("damgraph.models:DAMGAE"))
    finally:
        del MODEL_FAMILIES["toy-masked"]
    try:
        with pytest.raises(TypeError, match="unknown setting.*widht"):
            register_model("toy", ModelFamily("damgraph.models:DAMGAE", {"widht": 3}))
        assert "toy" not in MODEL_FAMILIES
    finally:
        MODEL_FAMILIES.pop("toy", None)


def test_clipping_per_part_needs_a_clipping_norm():
    with pytest.raises(ValueError, match="^clip_per_part clips each part's gradient norm to grad_clip, and grad_clip 0"):
        LinkPredConfig(clip_per_part=True)
    assert LinkPredConfig(clip_per_part=True, grad_clip=1.0).clip_per_part
