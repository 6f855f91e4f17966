from pathlib import Path

import pytest

from damgraph import DatasetNotFoundError, load_dataset
from damgraph.datasets import raw_files, resolve_root


def test_cora_and_citeseer_statistics(data_root):
    cora = load_dataset("Cora", root=data_root)
    data = cora[0]
    assert (data.num_nodes, data.num_edges, data.num_features, cora.num_classes) == (2708, 10556, 1433, 7)
    assert (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum())) == (140, 500, 1000)
    assert set(data.x.unique().tolist()) == {0.0, 1.0}  # binary features as the files hold them
    citeseer = load_dataset("citeseer", root=data_root)[0]
    assert (citeseer.num_nodes, citeseer.num_edges, citeseer.num_features) == (3327, 9104, 3703)


def test_normalized_features_sum_to_one(data_root):
    x = load_dataset("cora", root=data_root, normalize_features=True)[0].x
    sums = x.sum(dim=1)
    assert ((sums - 1).abs() < 1e-5).all()


def test_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.delenv("DAMGRAPH_DATA", raising=False)
    assert resolve_root() == Path("data")
    monkeypatch.setenv("DAMGRAPH_DATA", str(tmp_path))
    assert resolve_root() == tmp_path
    assert resolve_root("elsewhere") == Path("elsewhere")


def test_environment_variable_is_used(monkeypatch, data_root):
    monkeypatch.setenv("DAMGRAPH_DATA", str(data_root))
    assert load_dataset("cora")[0].num_nodes == 2708


def test_missing_files_name_the_files_and_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("pubmed", root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "PubMed" / "raw") in message
    for name in raw_files("pubmed"):
        assert name in message
    assert len(raw_files("pubmed")) == 8 and "ind.pubmed.test.index" in raw_files("pubmed")


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown dataset 'karate'"):
        load_dataset("karate")


def test_the_data_root_is_only_read(tmp_path, monkeypatch, data_root):
    import hashlib
    import shutil

    # A copy of the raw files in a writable root: nothing may appear in it.
    root = tmp_path / "root"
    shutil.copytree(data_root / "Cora" / "raw", root / "Cora" / "raw")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert load_dataset("cora", root=root)[0].num_nodes == 2708
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    cached = tmp_path / "cache" / "damgraph" / "planetoid" / key / "Cora"
    assert sorted(p.name for p in (cached / "raw").iterdir()) == sorted(raw_files("cora"))
    assert (cached / "processed").is_dir()


def test_a_failed_download_leaves_no_folder(tmp_path, monkeypatch):
    import torch_geometric.datasets

    def offline(root, name, transform=None):  # what PyG does without a network: makes raw/, then fails
        (Path(root) / name / "raw").mkdir(parents=True)
        raise OSError("network unreachable")

    monkeypatch.setattr(torch_geometric.datasets, "Planetoid", offline)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"the download failed: OSError\); put its 8 Planetoid files"):
        load_dataset("cora", root=root)
    assert list(tmp_path.rglob("*")) == [root]  # neither the data root nor the cache holds a new folder


@pytest.mark.parametrize("name, nodes, undirected_edges, features, classes", [
    ("photo", 7650, 119081, 745, 8),
    ("cs", 18333, 81894, 6805, 15),
])
def test_amazon_and_coauthor_graphs_load_from_the_root(data_root, name, nodes, undirected_edges, features, classes):
    if not (data_root / {"photo": "Photo", "cs": "CS"}[name] / "raw").is_dir():
        pytest.skip(f"{name} is not in the data root {data_root}")
    data = load_dataset(name, root=data_root)[0]
    assert data.num_nodes == nodes and data.num_features == features
    assert int(data.y.max()) + 1 == classes
    assert data.edge_index.size(1) == 2 * undirected_edges  # both directions, no self-loops
    assert not (data.edge_index[0] == data.edge_index[1]).any()


def test_graphs_without_a_public_split_get_20_and_30_nodes_per_class(data_root):
    if not (data_root / "Photo" / "raw").is_dir():
        pytest.skip(f"photo is not in the data root {data_root}")
    import torch

    data = load_dataset("photo", root=data_root)[0]
    assert (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum())) == (160, 240, 7250)
    assert torch.bincount(data.y[data.train_mask]).tolist() == [20] * 8
    assert torch.bincount(data.y[data.val_mask]).tolist() == [30] * 8
    assert not (data.train_mask & data.val_mask).any() and bool((data.train_mask | data.val_mask | data.test_mask).all())
    again = load_dataset("photo", root=data_root, normalize_features=True)[0]  # fixed: the same nodes every load
    assert torch.equal(again.train_mask, data.train_mask) and torch.equal(again.test_mask, data.test_mask)


def test_a_small_class_gives_what_it_has_training_first():
    import torch
    from torch_geometric.data import Data

    from damgraph.splits import PerClassSplit

    data = PerClassSplit(2, 3, seed=0)(Data(y=torch.tensor([0] * 10 + [1] * 4)))
    assert torch.bincount(data.y[data.train_mask]).tolist() == [2, 2]
    assert torch.bincount(data.y[data.val_mask]).tolist() == [3, 2] and int(data.test_mask.sum()) == 5


def test_dense_feature_rows_are_row_normalised_unless_told_otherwise(data_root):
    """Cora's binary rows hold 18 ones on average and are kept; Photo's hold 259 and are row-normalised (a note
    says so); normalize_features=False keeps them as they are."""
    import torch

    from damgraph.datasets import FEATURE_MASS_LIMIT, needs_row_normalization

    cora = load_dataset("cora", root=data_root)
    assert getattr(cora, "feature_note", None) is None and float(cora[0].x.max()) == 1.0
    assert not needs_row_normalization(cora[0].x) and not needs_row_normalization(None)
    assert needs_row_normalization(torch.ones(3, int(FEATURE_MASS_LIMIT) + 1))
    assert not needs_row_normalization(torch.ones(3, int(FEATURE_MASS_LIMIT)))
    if not (data_root / "Photo" / "raw").is_dir():
        pytest.skip(f"photo is not in the data root {data_root}")
    photo = load_dataset("photo", root=data_root)
    assert photo.feature_note == "photo: node features row-normalised (mean row mass 258.8 > 50)"
    torch.testing.assert_close(photo[0].x.sum(1), torch.ones(photo[0].num_nodes))
    raw = load_dataset("photo", root=data_root, normalize_features=False)[0]
    assert float(raw.x.sum(1).mean()) == pytest.approx(258.8, abs=0.05)
