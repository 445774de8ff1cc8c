"""Model files: save -> load -> the same samples, and bad files refused."""

import copy
import hashlib
import json
import pickle
import struct

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import mixed_table, tiny
from sklearn.datasets import load_digits

import augment
from augment import ImageDiffusion, ImageGAN, ImageVAE
from augment.io import _PREAMBLE, FORMAT_VERSION, MAGIC, ModelFileError

TINY_IMAGES = {
    ImageGAN: dict(epochs=1, generator_width=8, critic_width=4, noise_dim=4),
    ImageVAE: dict(epochs=1, width=4, latent_dim=2),
    ImageDiffusion: dict(epochs=1, width=8, sampling_steps=2),
}


def assert_same(a, b):
    """Equal outputs of ``sample`` (frames, series, arrays, or tuples of them)."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)
    else:
        assert type(a) is type(b)
        np.testing.assert_array_equal(a, b)


def round_trip(generator, tmp_path):
    path = generator.save(tmp_path / "model.augment")
    assert path.exists()
    return augment.load(path)


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.images[:60] / 16, data.target[:60]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small labelled model file, and its generator."""
    X = mixed_table(60)
    y = pd.Series(["a"] * 40 + ["b"] * 20, name="answer")
    generator = tiny(augment.TabularVAE).fit(X, y)
    path = generator.save(tmp_path_factory.mktemp("model") / "model.augment")
    return path, generator


# ---------------------------------------------------------------- round trip
@pytest.mark.parametrize("target", ["classes", "continuous", "none"])
def test_tabular_round_trip_samples_the_same(
    generator_class, labelled, target, tmp_path
):
    X, y = labelled
    if target == "continuous":
        X, y = X.drop(columns="income"), X["income"].fillna(0.0)
    elif target == "none":
        y = None
    generator = tiny(generator_class).fit(X, y)
    generator.sample(7)  # the counter of draws is saved too
    loaded = round_trip(generator, tmp_path)
    assert type(loaded) is generator_class
    assert loaded.get_params() == generator.get_params()
    assert_same(loaded.sample(40), generator.sample(40))
    assert_same(loaded.sample(40), generator.sample(40))  # and the next draws
    if target == "classes":
        np.testing.assert_array_equal(loaded.classes_, generator.classes_)
        assert_same(loaded.sample(9, y="yes"), generator.sample(9, y="yes"))
    assert loaded.history_ == generator.history_
    assert loaded.encoder_.column_index_.equals(generator.encoder_.column_index_)


def test_tabular_round_trip_of_arrays_and_lists(generator_class, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = [int(v) for v in rng.integers(0, 2, 80)]
    generator = tiny(generator_class).fit(X.tolist(), y)
    loaded = round_trip(generator, tmp_path)
    a, b = generator.sample(20), loaded.sample(20)
    assert isinstance(b[0], list) and isinstance(b[1], list)
    assert a == b


def test_fit_resample_state_and_unseeded_model(tmp_path, labelled):
    X, y = labelled
    generator = tiny(augment.TabularGAN, random_state=None)
    generator.set_params(sampling_strategy={"maybe": 70, "yes": 60})
    generator.fit_resample(X, y)
    loaded = round_trip(generator, tmp_path)
    assert loaded.sampling_strategy_ == generator.sampling_strategy_
    assert loaded.get_params()["sampling_strategy"] == {"maybe": 70, "yes": 60}
    assert_same(loaded.sample(30), generator.sample(30))


@pytest.mark.parametrize("cls", list(TINY_IMAGES), ids=lambda c: c.__name__)
@pytest.mark.parametrize("labels", [True, False])
def test_image_round_trip_samples_the_same(cls, labels, digits, tmp_path):
    X, y = digits
    generator = cls(**TINY_IMAGES[cls], random_state=0).fit(X, y if labels else None)
    loaded = round_trip(generator, tmp_path)
    assert_same(loaded.sample(12), generator.sample(12))
    assert loaded.image_shape_ == generator.image_shape_


def test_flat_image_frames_round_trip(tmp_path, digits):
    X, y = digits
    frame = pd.DataFrame(X.reshape(len(X), -1)).add_prefix("px")
    generator = ImageVAE(**TINY_IMAGES[ImageVAE], image_shape=(8, 8), random_state=0)
    loaded = round_trip(generator.fit(frame, pd.Series(y, name="digit")), tmp_path)
    a, b = generator.sample(5), loaded.sample(5)
    assert list(b[0].columns) == list(frame.columns) and b[1].name == "digit"
    assert_same(a, b)


def test_load_overrides_the_device(saved):
    path, generator = saved
    loaded = augment.load(path, device="cuda:7")
    assert loaded.device == "cuda:7"
    if not torch.cuda.is_available():  # asked for explicitly: no fall-back
        with pytest.raises(RuntimeError, match="CUDA, which is not available"):
            loaded.sample(5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_a_model_saved_on_a_gpu_loads_on_the_cpu(saved, tmp_path):
    _, generator = saved
    on_gpu = copy.deepcopy(generator).set_params(device="cuda:0")
    on_gpu.save(tmp_path / "gpu.augment")
    with pytest.warns(RuntimeWarning, match="loaded on the CPU"):
        loaded = augment.load(tmp_path / "gpu.augment")
    assert loaded.device == "cpu"
    assert_same(loaded.sample(5, random_state=0), generator.sample(5, random_state=0))


def test_pickle_and_joblib_keep_working(saved, tmp_path):
    _, generator = saved
    clone = pickle.loads(pickle.dumps(generator))
    assert_same(clone.sample(10), generator.sample(10))
    joblib.dump(generator, tmp_path / "model.joblib")
    assert_same(joblib.load(tmp_path / "model.joblib").sample(10), generator.sample(10))


def test_the_header_is_plain_json_with_what_was_promised(saved):
    path, generator = saved
    content = path.read_bytes()
    magic, version, header_length, _ = _PREAMBLE.unpack_from(content)
    assert magic == MAGIC and version == FORMAT_VERSION
    header = json.loads(content[_PREAMBLE.size : _PREAMBLE.size + header_length])
    assert header["class"] == "TabularVAE"
    assert header["package_version"] == augment.__version__
    assert header["params"]["latent_dim"] == generator.latent_dim
    assert header["state"]["_seed"] == generator._seed
    assert [h["epoch"] for h in header["state"]["history_"]] == [0, 1, 2]
    assert header["modules"] == ["conditioning_", "module_"]


def test_unsaveable_values_are_named(labelled, tmp_path):
    X, y = labelled
    generator = tiny(augment.TabularVAE).fit(X, y)
    generator.set_params(sampling_strategy=lambda y: {})
    with pytest.raises(TypeError, match="parameter 'sampling_strategy'.*function"):
        generator.save(tmp_path / "model.augment")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tiny(augment.TabularVAE).fit(X, y).save(tmp_path / "no" / "model.augment")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


# ----------------------------------------------------------------- bad files
def rewrite(path, target, edit):
    """Write ``path`` to ``target`` with ``edit(header)`` applied and a
    correct checksum: a well-formed file with a forged header."""
    content = path.read_bytes()
    _, version, header_length, weights_length = _PREAMBLE.unpack_from(content)
    start = _PREAMBLE.size
    header = json.loads(content[start : start + header_length])
    weights = content[start + header_length + 32 :]
    edit(header)
    header_bytes = json.dumps(header).encode()
    preamble = _PREAMBLE.pack(MAGIC, version, len(header_bytes), weights_length)
    digest = hashlib.sha256(preamble + header_bytes + weights).digest()
    target.write_bytes(preamble + header_bytes + digest + weights)
    return target


def test_a_forged_but_well_formed_file_still_loads(saved, tmp_path):
    path, generator = saved
    copy = rewrite(path, tmp_path / "copy.augment", lambda header: None)
    assert_same(augment.load(copy).sample(5), augment.load(path).sample(5))


def test_truncated_files(saved, tmp_path):
    path, _ = saved
    content = path.read_bytes()
    for size in [len(content) - 1, len(content) // 2, 20, 0]:
        bad = tmp_path / "truncated.augment"
        bad.write_bytes(content[:size])
        with pytest.raises(
            ModelFileError, match=r"truncated\.augment.*(truncated|empty)"
        ):
            augment.load(bad)
    bad.write_bytes(content + b"\0")
    with pytest.raises(ModelFileError, match="unexpected bytes"):
        augment.load(bad)


@pytest.mark.parametrize("where", ["header", "weights"])
def test_edited_files_fail_the_checksum(saved, tmp_path, where):
    path, _ = saved
    content = bytearray(path.read_bytes())
    if where == "header":
        at = content.index(b'"latent_dim": 8')
        content[at + len('"latent_dim": ')] = ord("9")
    else:
        content[-10] ^= 0xFF
    bad = tmp_path / "edited.augment"
    bad.write_bytes(bytes(content))
    with pytest.raises(ModelFileError, match=r"edited\.augment: checksum mismatch"):
        augment.load(bad)


def test_newer_format_version(saved, tmp_path):
    path, _ = saved
    content = bytearray(path.read_bytes())
    struct.pack_into("<I", content, len(MAGIC), FORMAT_VERSION + 1)
    bad = tmp_path / "newer.augment"
    bad.write_bytes(bytes(content))
    with pytest.raises(ModelFileError, match=r"newer\.augment.*version 2.*newer"):
        augment.load(bad)


def test_files_that_are_not_models(tmp_path):
    csv = tmp_path / "table.augment"
    mixed_table(5).to_csv(csv)
    with pytest.raises(ModelFileError, match=r"table\.augment: not an augment-learn"):
        augment.load(csv)
    with pytest.raises(FileNotFoundError, match=r"missing\.augment"):
        augment.load(tmp_path / "missing.augment")
    with pytest.raises(ModelFileError, match="folder"):
        augment.load(tmp_path)


class _Trap:
    """Unpickling this creates the marker file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return Path.touch, (Path(self.marker),)


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_a_pickle_renamed_to_the_extension_is_refused_unrun(tmp_path, dump):
    marker = tmp_path / "code-ran"
    bad = tmp_path / "model.augment"
    if dump == "pickle":
        bad.write_bytes(pickle.dumps(_Trap(str(marker))))
    else:
        joblib.dump(_Trap(str(marker)), bad, compress=3)
    with pytest.raises(
        ModelFileError, match=r"model\.augment: this looks like a pickle"
    ):
        augment.load(bad)
    assert not marker.exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda h: h.update({"class": "Pipeline"}),
            "class 'Pipeline'.*not a generator",
        ),
        (
            lambda h: h.update({"class": "os.system"}),
            "class 'os.system'.*not a generator",
        ),
        (
            lambda h: h["state"].update(
                {"_input_format": {"$type": "object", "class": "builtins.eval"}}
            ),
            "class 'builtins.eval' is not allowed",
        ),
        (
            lambda h: h["state"].update({"x": {"$type": "type", "name": "function"}}),
            "type 'function' is not allowed",
        ),
        (
            lambda h: h["state"].update({"x": {"$type": "pickle", "data": "gASV"}}),
            "unknown value type 'pickle'",
        ),
        (lambda h: h.update({"modules": []}), "holds modules"),
    ],
)
def test_headers_naming_anything_outside_the_package(saved, tmp_path, edit, message):
    path, _ = saved
    bad = rewrite(path, tmp_path / "forged.augment", edit)
    with pytest.raises(ModelFileError, match=rf"forged\.augment: .*{message}"):
        augment.load(bad)


def test_weights_that_do_not_fit_the_model(saved, tmp_path):
    path, _ = saved
    # the modules are built with the settings the fit trained with
    bad = rewrite(
        path,
        tmp_path / "shape.augment",
        lambda h: h["state"]["training_settings_"].update(latent_dim=9),
    )
    with pytest.raises(ModelFileError, match=r"shape\.augment: the weights of module_"):
        augment.load(bad)


# ------------------------------------------------- the reproducible stream
@pytest.fixture(scope="module")
def streamed():
    """A labelled GAN on a table with a rare-valued column (rare draws in decoding)."""
    X = mixed_table(150)
    X["shop"] = [f"s{i % 130}" for i in range(150)]  # 100 kept values, 30 rare
    y = pd.Series(["no"] * 90 + ["yes"] * 40 + ["maybe"] * 20, name="answer")
    return tiny(augment.TabularGAN).fit(X, y)


def test_ranges_of_a_stream_concatenate_into_the_whole(streamed):
    block = streamed._block_size
    whole = streamed.sample(2 * block + 10, random_state=7)
    cuts = [0, 5, block - 1, block + 3, 2 * block + 10]
    parts = [
        streamed.sample(b - a, random_state=7, start=a)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    X = pd.concat([p[0] for p in parts], ignore_index=True)
    y = pd.concat([p[1] for p in parts], ignore_index=True)
    assert_same((X, y), whole)
    assert whole[0]["shop"].nunique() > 100  # rare values were drawn
    other = streamed.sample(50, random_state=8)
    assert not other[0].equals(whole[0].iloc[:50])


def test_ranges_with_labels_and_conditions(streamed):
    labels = np.random.default_rng(0).choice(["no", "yes", "maybe"], 5000)
    whole = streamed.sample(5000, y=labels, conditions={"city": "Oslo"}, random_state=1)
    part = streamed.sample(
        900,
        y=labels[4000:4900],
        conditions={"city": "Oslo"},
        random_state=1,
        start=4000,
    )
    assert_same(part[0], whole[0].iloc[4000:4900].reset_index(drop=True))
    assert (part[0]["city"] == "Oslo").all()


def test_unseeded_calls_draw_new_rows_and_a_refit_replays_them(labelled):
    X, y = labelled
    first = tiny(augment.TabularVAE).fit(X, y)
    a, b = first.sample(20), first.sample(20)
    assert not a[0].equals(b[0])
    again = tiny(augment.TabularVAE).fit(X, y)
    assert_same(again.sample(20), a)
    assert_same(again.sample(20), b)
    assert_same(first.sample(20, random_state=3), again.sample(20, random_state=3))


def test_stream_arguments_are_checked(streamed):
    with pytest.raises(ValueError, match="start=5 needs a random_state"):
        streamed.sample(3, start=5)
    with pytest.raises(TypeError, match="random_state must be an int"):
        streamed.sample(3, random_state=np.random.default_rng(0))
    with pytest.raises(ValueError, match="start must be >= 0"):
        streamed.sample(3, random_state=0, start=-1)
    draws = streamed._draws
    with pytest.raises(ValueError, match="n_samples must be >= 0"):
        streamed.sample(-1)
    assert streamed._draws == draws  # a failed call draws nothing


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_sample_to_is_the_same_whatever_the_chunk_size(streamed, tmp_path, suffix):
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    files = [
        streamed.sample_to(
            tmp_path / f"{k}{suffix}", 5000, chunk_size=k, random_state=2
        )
        for k in [5000, 1234, 4096]
    ]
    tables = [read(f) for f in files]
    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0])
    X, y = streamed.sample(5000, random_state=2)
    assert list(tables[0].columns) == [*X.columns, "answer"]
    if suffix == ".parquet":  # the training dtypes survive
        pd.testing.assert_frame_equal(tables[0].drop(columns="answer"), X)
        assert tables[0]["answer"].tolist() == y.tolist()


def test_sample_to_counts_conditions_and_bad_paths(streamed, tmp_path):
    path = streamed.sample_to(
        tmp_path / "out.parquet", 30, y={"yes": 20, "maybe": 10},
        conditions={"tier": "hi"}, chunk_size=7,
    )  # fmt: skip
    table = pd.read_parquet(path)
    assert table["answer"].tolist() == ["yes"] * 20 + ["maybe"] * 10
    assert (table["tier"] == "hi").all() and table["tier"].dtype == "category"
    empty = pd.read_parquet(streamed.sample_to(tmp_path / "empty.parquet", 0))
    assert len(empty) == 0 and list(empty.columns) == list(table.columns)
    with pytest.raises(ValueError, match="30 rows in all.*n_samples=31"):
        streamed.sample_to(tmp_path / "x.parquet", 31, y={"yes": 20, "maybe": 10})
    with pytest.raises(FileNotFoundError, match="folder .*no' does not exist"):
        streamed.sample_to(tmp_path / "no" / "x.parquet", 5)
    with pytest.raises(ValueError, match="unknown file type '.xlsx'"):
        streamed.sample_to(tmp_path / "x.xlsx", 5)
    with pytest.raises(ValueError, match="never seen in column 'tier'"):
        streamed.sample_to(tmp_path / "x.csv", 5, conditions={"tier": "mid"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "empty.parquet",
        "out.parquet",
    ]


def test_a_loaded_model_continues_the_stream(streamed, tmp_path):
    streamed.sample(3)
    loaded = round_trip(streamed, tmp_path)
    assert_same(loaded.sample(10), streamed.sample(10))
    assert_same(
        loaded.sample(10, random_state=4, start=4090),
        streamed.sample(10, random_state=4, start=4090),
    )


def test_every_generator_streams_in_ranges(generator_class, labelled):
    X, y = labelled
    generator = tiny(generator_class).fit(X, y)
    block = generator._block_size
    whole = generator.sample(block + 20, random_state=5, conditions={"plan": "pro"})
    part = generator.sample(
        30, random_state=5, start=block - 10, conditions={"plan": "pro"}
    )
    assert_same(part[0], whole[0].iloc[block - 10 :].reset_index(drop=True))
    assert (part[0]["plan"] == "pro").all()


@pytest.mark.parametrize("cls", list(TINY_IMAGES), ids=lambda c: c.__name__)
def test_image_streams_in_ranges(cls, digits):
    X, y = digits
    generator = cls(**TINY_IMAGES[cls], random_state=0).fit(X, y)
    whole = generator.sample(300, random_state=1)
    part = generator.sample(60, random_state=1, start=240)
    assert_same(part, (whole[0][240:], whole[1][240:]))


def test_rules_are_saved_as_plain_data(tmp_path):
    X = pd.DataFrame({"low": np.arange(60.0) % 7, "gap": np.arange(60.0) % 5})
    X["high"] = X["low"] + X["gap"] + 1  # low < high: an order (and linear) rule
    generator = tiny(augment.TabularVAE).fit(X)
    assert generator.rules_
    loaded = round_trip(generator, tmp_path)
    assert loaded.rules_ == generator.rules_
    assert_same(loaded.sample(50, random_state=2), generator.sample(50, random_state=2))
