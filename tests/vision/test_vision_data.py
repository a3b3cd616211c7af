"""Long-tail datasets: CIFAR-LT profile and exact LDAM-DRW selection, OLTR split files, offline digits."""

import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from stk_nmt.vision import CIFARLongTail, digits_long_tail, long_tail_counts, oltr_dataset, shot_groups
from stk_nmt.vision.data import build_datasets
from stk_nmt.vision.digits import load_digit_images, split_digits
from stk_nmt.vision.oltr import SplitFileDataset


@pytest.mark.parametrize("imb_factor, size, smallest", [(10, 19573, 50), (50, 12608, 10), (100, 10847, 5)])
def test_cifar100_lt_split_sizes(imb_factor, size, smallest):
    counts = long_tail_counts(100, imb_factor, 500)
    assert sum(counts) == size  # the published CIFAR-100-LT train sizes
    assert counts[0] == 500 and counts[-1] == smallest
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    # counts[i] = int(500 * IF^(-i/99)): compare with the closed form in exact rational arithmetic
    # where it is not borderline (a float may round an exact integer either way).
    for i in (1, 33, 50, 98):
        exact = 500 * imb_factor ** (-i / 99)
        assert counts[i] == int(exact) or abs(exact - round(exact)) < 1e-9


def test_cifar100_lt_shot_partition_at_if100():
    groups = shot_groups(long_tail_counts(100, 100, 500))
    assert (len(groups["many"]), len(groups["medium"]), len(groups["few"])) == (35, 35, 30)
    assert groups["many"] == list(range(35)) and groups["few"] == list(range(70, 100))


def test_shot_group_boundaries():
    groups = shot_groups([101, 100, 20, 19])
    assert groups == {"many": [0], "medium": [1, 2], "few": [3]}


@pytest.mark.parametrize("bad", [1, 1.0, 0.5, 0, -3, float("nan"), float("inf"), True, "10"])
def test_imbalance_factor_must_exceed_one(bad):
    with pytest.raises(ValueError, match="imb_factor"):
        long_tail_counts(100, bad, 500)


def write_fake_cifar100(root, per_class_train=20, per_class_test=3, seed=1):
    """A CIFAR-100 python-pickle folder with random images, in the layout of the real archive."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-100-python")
    os.makedirs(folder)
    splits = {}
    for name, per_class in (("train", per_class_train), ("test", per_class_test)):
        labels = rng.permutation(np.repeat(np.arange(100), per_class)).tolist()
        data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({"filenames": [f"{i}.png" for i in range(len(labels))], "fine_labels": labels,
                         "coarse_labels": [0] * len(labels), "data": data}, f)
        splits[name] = (data, np.asarray(labels))
    return splits


def reference_selection(labels, counts):
    """LDAM-DRW's selection written the way its code does it: global numpy seed 0, np.random.shuffle."""
    state = np.random.get_state()
    np.random.seed(0)
    kept = []
    for c, n in zip(np.unique(labels), counts):
        idx = np.where(labels == c)[0]
        np.random.shuffle(idx)
        kept.extend(idx[:n].tolist())
    np.random.set_state(state)
    return np.asarray(kept)


def test_cifar100_lt_exact_selection_from_pickle(tmp_path):
    splits = write_fake_cifar100(str(tmp_path))
    data, labels = splits["train"]
    ds = CIFARLongTail(str(tmp_path), 100, imb_factor=10, train=True, transform=None)
    counts = long_tail_counts(100, 10, 20)
    assert ds.class_counts == counts and len(ds) == sum(counts)
    keep = reference_selection(labels, counts)
    assert ds.targets == labels[keep].tolist()
    # Images: the pickle's rows are channel-major 3x32x32; the dataset holds HWC.
    expected = data[keep].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert np.array_equal(ds.images, expected)
    # The balanced test split is the whole test file, in order.
    test = CIFARLongTail(str(tmp_path), 100, imb_factor=10, train=False, transform=None)
    assert test.class_counts == [3] * 100 and test.targets == splits["test"][1].tolist()


def test_cifar_default_transforms_normalise(tmp_path):
    write_fake_cifar100(str(tmp_path))
    test = CIFARLongTail(str(tmp_path), 100, imb_factor=100, train=False)
    x, y = test[7]
    mean = torch.tensor([0.5071, 0.4865, 0.4409]).view(3, 1, 1)
    std = torch.tensor([0.2673, 0.2564, 0.2762]).view(3, 1, 1)
    raw = torch.from_numpy(test.images[7]).permute(2, 0, 1).float() / 255
    assert y == test.targets[7] and torch.allclose(x, (raw - mean) / std, atol=1e-6)
    train = CIFARLongTail(str(tmp_path), 100, imb_factor=100, train=True)
    torch.manual_seed(0)
    assert train[0][0].shape == (3, 32, 32)


def test_cifar_from_archive_only(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_fake_cifar100(str(src))
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "cifar-100-python.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar-100-python", arcname="cifar-100-python")
    ds = CIFARLongTail(str(root), 100, imb_factor=50, train=True, transform=None)
    assert ds.class_counts == long_tail_counts(100, 50, 20)
    assert (root / "cifar-100-python" / "train").is_file()
    assert [p.name for p in root.iterdir() if p.name.startswith(".extract")] == []


def test_cifar_missing_data_names_file_and_url(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python.*https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"):
        CIFARLongTail(str(tmp_path), 100, imb_factor=100)
    with pytest.raises(ValueError, match="needs --data-dir"):
        build_datasets("cifar100-lt", None)


def test_cifar_labels_out_of_range(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    with open(folder / "train", "wb") as f:
        pickle.dump({"data": np.zeros((200, 3072), np.uint8), "fine_labels": [0] * 199 + [100]}, f)
    with pytest.raises(ValueError, match=r"labels out of range.*label=100"):
        CIFARLongTail(str(tmp_path), 100, imb_factor=10)


def write_oltr(root, prefix, split, entries, make_images=True):
    from PIL import Image

    lines = []
    for path, label in entries:
        if make_images:
            full = root / "images" / path
            full.parent.mkdir(parents=True, exist_ok=True)
            color = (label * 40 % 256, 100, 200)
            Image.new("RGB", (48 + label, 40), color).save(full)
        lines.append(f"{path} {label}")
    (root / f"{prefix}_{split}.txt").write_text("\n".join(lines) + "\n")


def test_imagenet_lt_split_files_load(tmp_path):
    train_entries = [(f"train/n{c:03d}/img_{i}.JPEG", c) for c in (0, 1, 999) for i in range(4 - (c % 3))]
    test_entries = [(f"val/ILSVRC2012_val_{i:08d}.JPEG", c) for i, c in enumerate((0, 1, 999))]
    write_oltr(tmp_path, "ImageNet_LT", "train", train_entries)
    write_oltr(tmp_path, "ImageNet_LT", "test", test_entries)
    train, test = build_datasets("imagenet-lt", str(tmp_path / "images"), split_dir=str(tmp_path), image_size=32)
    assert train.num_classes == 1000 and len(train) == len(train_entries) and len(test) == 3
    counts = train.class_counts
    assert counts[0] == 4 and counts[1] == 3 and counts[999] == 4 and sum(counts) == len(train_entries)
    x, y = test[2]
    assert y == 999 and x.shape == (3, 32, 32)
    # Centre crop of a uniform image: every pixel is the normalised colour.
    expected = (torch.tensor([999 * 40 % 256, 100, 200]) / 255 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(x.mean(dim=(1, 2)), expected, atol=0.05)  # JPEG is lossy


def test_places_lt_missing_images_and_files(tmp_path):
    write_oltr(tmp_path, "Places_LT", "train", [("a/1.jpg", 0), ("a/2.jpg", 364)])
    (tmp_path / "images" / "a" / "2.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 2 images .* missing.*a/2.jpg"):
        oltr_dataset("places-lt", str(tmp_path / "images"), "train", split_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"Places_LT_test.txt"):
        oltr_dataset("places-lt", str(tmp_path / "images"), "test", split_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="image root not found"):
        oltr_dataset("places-lt", str(tmp_path / "nowhere"), "train", split_dir=str(tmp_path))


def test_split_file_bad_labels_and_lines(tmp_path):
    write_oltr(tmp_path, "Places_LT", "train", [("a/1.jpg", 0), ("a/2.jpg", 365)])
    with pytest.raises(ValueError, match=r"Places_LT_train.txt:2: label out of range \[0, 365\): label=365"):
        oltr_dataset("places-lt", str(tmp_path / "images"), "train", split_dir=str(tmp_path))
    (tmp_path / "bad.txt").write_text("a/1.jpg zero\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: expected 'relative/path label'"):
        SplitFileDataset(str(tmp_path / "images"), str(tmp_path / "bad.txt"), 10)


def test_offline_digits_long_tailed():
    train, test = digits_long_tail("mnist", imb_factor=100)
    assert train.class_counts == [400, 239, 143, 86, 51, 30, 18, 11, 6, 4]
    assert test.class_counts == [100] * 10 and train.image_shape == (1, 28, 28)
    groups = shot_groups(train.class_counts)
    assert [len(groups[g]) for g in ("many", "medium", "few")] == [3, 3, 4]
    images, labels = load_digit_images("mnist")
    assert images.shape == (5000, 28, 28, 1) and np.bincount(labels).tolist() == [500] * 10
    train_idx, test_idx, _ = split_digits(labels, 100, 100, seed=0)
    assert len(set(train_idx.tolist()) | set(test_idx.tolist())) == len(train_idx) + len(test_idx)  # disjoint
    assert np.array_equal(train.images, images[train_idx]) and np.array_equal(test.images, images[test_idx])
    assert np.array_equal(labels[train_idx], np.asarray(train.targets))


def test_sklearn_digits_long_tailed():
    train, test = digits_long_tail("sklearn", imb_factor=10)
    img_max = 174 - 30  # the smallest sklearn digit class has 174 images; 30 per class are held out
    assert train.class_counts == long_tail_counts(10, 10, img_max)
    assert test.class_counts == [30] * 10 and train.image_shape == (1, 8, 8)
    with pytest.raises(ValueError, match="imb_factor"):
        digits_long_tail("sklearn", imb_factor=1)
    with pytest.raises(ValueError, match="source"):
        digits_long_tail("emnist")


def test_digits_split_is_the_per_class_shuffle():
    # Independent of shuffle_by_class: one RandomState, each class's indices shuffled in label order;
    # the first test_per_class are the test split, the next n_i the training split.
    labels = np.repeat(np.arange(4), [9, 7, 8, 10])[np.random.RandomState(5).permutation(34)]
    rng = np.random.RandomState(3)
    expected_train, expected_test = [], []
    for c, n in zip(range(4), long_tail_counts(4, 5, 7 - 2)):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        expected_test += idx[:2].tolist()
        expected_train += idx[2 : 2 + n].tolist()
    train_idx, test_idx, profile = split_digits(labels, 5, 2, seed=3)
    assert profile == long_tail_counts(4, 5, 5)
    assert train_idx.tolist() == expected_train and test_idx.tolist() == expected_test
