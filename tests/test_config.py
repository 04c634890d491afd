from pathlib import Path

import pytest

from graphrec.config import JobConfig, load_config
from graphrec.errors import ConfigError
from tests.conftest import make_config, tiny_config_dict

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))


def test_configs_are_shipped():
    assert len(SHIPPED) >= 2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load_config(path)
    assert isinstance(cfg, JobConfig)
    assert cfg.build.target in cfg.extract.edges
    # the data a shipped config names is in the repo (or made by `graphrec synth`)
    assert (ROOT / cfg.extract.root).is_dir() or "graphrec synth" in path.read_text()
    assert not Path(cfg.extract.root).is_absolute()


def test_overrides_are_typed(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load_config(
        "configs/movielens.yaml", ["train.epochs=3", "sampler.num_neighbors=[4,2]", "train.lr=1e-3"]
    )
    assert cfg.train.epochs == 3
    assert cfg.sampler.num_neighbors == [4, 2]
    assert cfg.train.lr == pytest.approx(1e-3)


def test_unknown_key_suggests_the_right_one(monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ConfigError, match=r"train\.epoch'.*did you mean 'epochs'"):
        load_config("configs/movielens.yaml", ["train.epoch=3"])


def test_wrong_type_names_the_key(monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ConfigError, match=r"train\.epochs='many': expected int"):
        load_config("configs/movielens.yaml", ["train.epochs=many"])


def test_loss_must_fit_objective(tiny_root, tmp_path):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["train"].update(objective="link", loss="mse")
    with pytest.raises(ConfigError, match="does not fit train.objective='link'"):
        make_config(data)


def test_label_must_be_read(tiny_root, tmp_path):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["build"]["label"] = "stars"
    with pytest.raises(ConfigError, match="'stars' is not a property of edge type 'rates'"):
        make_config(data)


def test_edge_endpoint_must_be_a_node_type(tiny_root, tmp_path):
    data = tiny_config_dict(tiny_root, tmp_path)
    data["extract"]["edges"]["rates"]["dst"] = "film"
    with pytest.raises(ConfigError, match="node type 'film' is not in extract.nodes"):
        make_config(data)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("nope/missing.yaml")


def test_a_union_setting_takes_each_of_its_types_and_names_them_when_wrong():
    path = ROOT / "configs/movielens.yaml"
    assert load_config(path, ["model.sparse_embeddings=auto"]).model.sparse_embeddings == "auto"
    assert load_config(path, ["model.sparse_embeddings=true"]).model.sparse_embeddings is True
    with pytest.raises(ConfigError, match=r"model.sparse_embeddings='maybe': expected bool or"):
        load_config(path, ["model.sparse_embeddings=maybe"])


def test_model_specific_losses_and_options_are_checked():
    """The model registry's checks (graphrec.models.check_model), run before any work."""
    from graphrec.models import check_model

    def check(*overrides):
        return check_model(load_config(path, list(overrides)))

    path = ROOT / "configs/movielens-link.yaml"  # LightGCN, multinomial
    assert check().name == "lightgcn"
    with pytest.raises(ConfigError, match="needs model.name=lightgcn or pinsage"):
        check("model.name=sage")
    with pytest.raises(ConfigError, match="hard_negatives needs model.name=pinsage"):
        check("train.hard_negatives=0.5")
    with pytest.raises(ConfigError, match="ranks items"):
        check("train.objective=rating", "train.loss=mse")
    with pytest.raises(ConfigError, match=r"model.name='nosuch' is not a model \(have: "):
        check("model.name=nosuch")
    with pytest.raises(ConfigError, match="train.disjoint_ratio must be 0"):
        check("train.disjoint_ratio=0.5")
    pinsage = ["model.name=pinsage", "train.loss=bpr", "train.low_label_weight=1"]
    assert check(*pinsage, "train.hard_negatives=0.5").name == "pinsage"
    cfg = load_config(path, [*pinsage, "model.pinsage.top_t=7"])
    assert cfg.model.pinsage.top_t == 7  # its own section, not sampler.num_neighbors


def test_low_label_weight_is_checked():
    path = ROOT / "configs/movielens-link.yaml"
    assert load_config(path).train.low_label_weight == 0.3
    with pytest.raises(ConfigError, match="between 0 and 1"):
        load_config(path, ["train.low_label_weight=2"])
    # implicit data (no label): every edge weighs 1, the default config runs unchanged
    assert load_config(path, ["build.label=null"]).train.low_label_weight == 0.3
    rating = ROOT / "configs/movielens.yaml"  # SAGE, rating regression
    from graphrec.models import check_model

    with pytest.raises(ConfigError, match="weights the multinomial loss"):
        check_model(load_config(rating, ["train.low_label_weight=0.5"]))
    # ... but without a label it weighs nothing, so any model may keep the default's 0.3
    unlabelled = ["build.label=null", "train.objective=link", "train.loss=bce"]
    check_model(load_config(rating, [*unlabelled, "train.low_label_weight=0.5"]))


@pytest.mark.parametrize("compare_config", ["movielens.yaml", "dvdrental.yaml", "social.yaml"])
def test_the_compare_default_is_the_default_config(compare_config, monkeypatch):
    """``compare``'s ``default`` entry is configs/movielens-link.yaml (what `graphrec run`
    runs and the README tells users to start from) with only the data section changed."""
    monkeypatch.chdir(ROOT)
    base = load_config(ROOT / "configs" / compare_config)
    default = load_config(ROOT / "configs" / compare_config, base.compare.models["default"])
    want = load_config(ROOT / "configs/movielens-link.yaml")
    for section, keys in {
        "model": ("name", "layers", "embedding_dim", "item_features", "blend", "blend_weight",
                  "ease", "gfcf"),
        "train": ("objective", "loss", "low_label_weight", "embedding_l2", "lr", "epochs",
                  "patience", "weight_decay"),
        "sampler": ("batch_size",),
        "evaluate": ("k", "positive_threshold"),
    }.items():  # fmt: skip
        for key in keys:
            got, expected = (
                getattr(getattr(default, section), key),
                getattr(getattr(want, section), key),
            )
            assert got == expected, f"{compare_config} default: {section}.{key}"
