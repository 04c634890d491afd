"""Config checked before any work: every size, rate, share and name has a range, and a
value outside it ends in one line naming the key, exit 2, with nothing read or written."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import assert_one_line, run_cli, tree

PASSWORD = "s3cr3t-in-uri"

# (override(s), substring the message must hold)
CASES = [
    (["sampler.batch_size=0"], "sampler.batch_size=0"),
    (["sampler.num_workers=-1"], "sampler.num_workers=-1"),
    (["sampler.num_neighbors=[0]"], "sampler.num_neighbors"),
    (["model.dropout=1.5"], "model.dropout=1.5"),
    (["model.dropout=-0.1"], "model.dropout=-0.1"),
    (["model.hidden=0"], "model.hidden=0"),
    (["model.embedding_dim=0"], "model.embedding_dim=0"),
    (["model.layers=0"], "model.layers=0"),
    (["train.patience=-3"], "train.patience=-3"),
    (["train.epochs=0"], "train.epochs"),
    (["train.lr=0"], "train.lr=0"),
    (["train.lr=-0.01"], "train.lr=-0.01"),
    (["train.lr=.nan"], "train.lr=nan: expected a finite number"),
    (["train.lr=.inf"], "train.lr=inf: expected a finite number"),
    (["train.weight_decay=-1"], "train.weight_decay=-1"),
    (["train.embedding_l2=-1"], "train.embedding_l2=-1"),
    (["train.max_batches_per_epoch=0"], "train.max_batches_per_epoch=0"),
    (["train.threads=0"], "train.threads=0"),
    (["train.num_negatives=0"], "train.num_negatives"),
    (["train.checkpoint_every=0"], "train.checkpoint_every"),
    (["evaluate.k=0"], "evaluate.k=0"),
    (["evaluate.batch_users=0"], "evaluate.batch_users=0"),
    (["evaluate.positive_threshold=.inf"], "evaluate.positive_threshold=inf"),
    (["recommend.k=0"], "recommend.k=0"),
    (["recommend.batch_users=0"], "recommend.batch_users=0"),
    (["write.batch_size=0"], "write.batch_size=0"),
    (["write.batch_size=-1"], "write.batch_size=-1"),
    (["write.sink=neo4j", "write.relationship=RECOMMENDED-BY"], "write.relationship"),
    (["write.sink=neo4j", "extract.nodes.movie.label=Film Title"], "extract.nodes.movie.label"),
    (["write.sink=nosuch"], "write.sink='nosuch'"),
    (["extract.source=nosuch"], "extract.source='nosuch'"),
    (["extract.parallelism=0"], "extract.parallelism=0"),
    (["extract.batch_rows=0"], "extract.batch_rows=0"),
    (["extract.neo4j.fetch_rows=0"], "neo4j.fetch_rows=0"),
    (["extract.neo4j.uri=http://127.0.0.1:7474"], "scheme must be one of"),
    (["build.split.val=0.6", "build.split.test=0.5"], "build.split"),
    (["build.split.test=-0.1"], "build.split"),
    (["build.fastrp={dim: 0}"], "build.fastrp.dim=0"),
    (["build.features.movie=[{property: genres, kind: multi_hot, separator: ''}]"], "separator"),
    (["tune.cpus_per_trial=0"], "tune.cpus_per_trial=0"),
    (["train.hard_negatives=2"], "hard_negatives"),
    (["train.disjoint_ratio=1"], "train.disjoint_ratio"),
    (["distributed.workers=-1"], "distributed.workers"),
    (["name=../elsewhere"], "name='../elsewhere'"),
    (["name=.hidden"], "name='.hidden'"),
    (["train.epoch=3"], "did you mean 'epochs'"),
    (["train.epochs=three"], "train.epochs='three': expected int"),
    (["train.seed=100000000000000000000000"], "expected an integer within int64"),
    (["sampler.batch_size=100000000000000000000"], "expected an integer within int64"),
    (["train.run_id=../../escape"], "train.run_id='../../escape'"),
    (['name="tiny\\n"'], "name='tiny\\n'"),
    (["write.sink=neo4j", 'write.relationship="REC\\n"'], "write.relationship"),
    (["model.name=nosuch"], "model.name='nosuch' is not a model"),
    (["model.pinsage.top_t=0"], "model.pinsage.top_t=0"),
]


@pytest.mark.parametrize("overrides,expected", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_setting_is_refused_before_any_work(tiny, tmp_path, capsys, overrides, expected):
    path, _ = tiny
    before = tree(tmp_path)
    rc, out, err = run_cli(capsys, "run", "--config", str(path), "--quiet", *overrides)
    assert rc == 2
    assert_one_line(err, expected)
    assert out == ""
    assert tree(tmp_path) == before  # no snapshot, no checkpoint, no run folder


@pytest.mark.parametrize(
    "password", [PASSWORD, "Pa/ssW0rd-slash", "Pa@ssW0rd-at", "Pq/aX@sZ:s9"], ids=str
)
def test_uri_credentials_are_refused_without_echoing_them(tiny, tmp_path, capsys, password):
    path, _ = tiny
    uri = f"bolt://neo4j:{password}@127.0.0.1:7687"
    rc, _, err = run_cli(
        capsys, "run", "--config", str(path), "--quiet", f"extract.neo4j.uri={uri}"
    )
    assert rc == 2
    line = assert_one_line(err, "do not belong in the URI", "bolt://***@127.0.0.1:7687")
    for part in password.replace("/", " ").replace("@", " ").replace(":", " ").split():
        assert len(part) < 2 or part not in line


def test_inspect_uri_credentials_are_refused_without_echoing_them(capsys):
    rc, _, err = run_cli(capsys, "inspect", "--uri", f"bolt://neo4j:{PASSWORD}@127.0.0.1:1")
    assert rc == 2
    assert PASSWORD not in assert_one_line(err, "do not belong in the URI")


def test_inspect_http_uri_is_one_line(capsys):
    rc, _, err = run_cli(capsys, "inspect", "--uri", "http://127.0.0.1:7474")
    assert rc == 2
    assert_one_line(err, "scheme must be one of", "bolt://")


def test_every_shipped_config_passes_the_checks():
    """The ranges refuse nothing the project ships."""
    from pathlib import Path

    from graphrec.config import load_config

    configs = sorted(Path("configs").glob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)


def _not_utf8(tmp):
    p = tmp / "bin.yaml"
    p.write_bytes(b"\xff\xfe bad")
    return p, "is not UTF-8 text"


def _duplicate_key(tmp):
    p = tmp / "dup.yaml"
    p.write_text("name: a\ntrain: {epochs: 1}\nname: b\n")
    return p, "line 3, column 1: not valid YAML: key 'name' is given twice"


def _folder(tmp):
    p = tmp / "a-folder"
    p.mkdir()
    return p, "is a folder"


def _bad_yaml(tmp):
    p = tmp / "bad.yaml"
    p.write_text("name: a\ntrain: [1, 2\n")
    return p, "line 3, column 1: not valid YAML"


CONFIG_FILES = {
    "not UTF-8": _not_utf8,
    "a key given twice": _duplicate_key,
    "a folder": _folder,
    "broken YAML": _bad_yaml,
}


@pytest.mark.parametrize("make", CONFIG_FILES.values(), ids=CONFIG_FILES.keys())
def test_bad_config_files_are_one_line(tmp_path, capsys, make):
    path, expected = make(tmp_path)
    rc, _, err = run_cli(capsys, "train", "--config", str(path), "--quiet")
    assert rc == 2
    assert_one_line(err, str(path), expected)


def test_an_oversized_model_is_one_line_out_of_memory(tiny, capsys):
    path, _ = tiny
    rc, _, err = run_cli(capsys, "train", "--config", str(path), "--quiet", "model.hidden=10**11")
    assert rc == 2  # not a number: YAML reads 10**11 as text
    rc, _, err = run_cli(
        capsys, "train", "--config", str(path), "--quiet", "model.hidden=100000000000"
    )
    assert rc == 1
    assert_one_line(err, "out of memory", "nothing was written")
