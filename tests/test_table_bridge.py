"""Table-to-image bridge: encoder, layout, drawing, bad input, persistence (real German credit data)."""

import json

import numpy as np
import pytest
import torch

from adapters_modal import InputSpec
from tests.conftest import SHARED
from xmodal.bridges.table_encoding import TableEncoder
from xmodal.bridges.table_to_image import TableToImage, TableToImageConfig, layout_index
from xmodal.data.tables import load_table, read_csv_table
from xmodal.errors import DataError, XmodalError
from xmodal.persistence import weights_file

GERMAN = SHARED / "data" / "tabular" / "german_credit_uci"
FRAUD = SHARED / "data" / "tabular" / "creditcard_fraud_ulb_sample" / "creditcard_sample.csv"


@pytest.fixture(scope="module")
def german():
    return load_table(GERMAN)


def test_german_reader_follows_german_doc(german):
    assert german.features.shape == (1000, 20)
    assert sorted(german.classes) == ["bad", "good"] and (german.labels == "bad").sum() == 300
    assert german.features["duration_months"].dtype == float and german.features["purpose"].iloc[0] == "A43"


def test_csv_reader_drops_the_saved_index_and_needs_the_label_column():
    fraud = read_csv_table(FRAUD, "Class")
    assert "Unnamed: 0" not in fraud.features.columns and fraud.features.shape == (1722, 30)
    assert (fraud.labels == 1).sum() == 492
    with pytest.raises(DataError, match="no column 'label'.*--label-column"):
        read_csv_table(FRAUD, "label")


def test_onehot_and_ordinal_encodings(german):
    onehot = TableEncoder.fit(german.features)
    ordinal = TableEncoder.fit(german.features, encoding="ordinal")
    n_categories = sum(german.features[c].nunique() for c in onehot.categorical)
    assert len(onehot.numeric) == 7 and len(onehot.categorical) == 13
    assert onehot.num_features == 7 + n_categories and ordinal.num_features == 20
    encoded = onehot.transform(german.features)
    assert encoded.shape == (1000, onehot.num_features) and encoded.min() >= 0 and encoded.max() <= 1
    # one hot: every categorical column lights exactly one cell per row
    assert np.allclose(encoded[:, 7:].sum(axis=1), 13)
    # numeric: the training mean draws at 0.5
    assert np.isclose(encoded[:, 0].mean(), 0.5, atol=0.02)
    codes = ordinal.transform(german.features)[:, 7]  # first categorical column: 4 categories
    assert sorted(np.unique(codes).round(3)) == [0.2, 0.4, 0.6, 0.8]


def test_missing_values_error_by_default_and_impute_on_request(german):
    holes = german.features.head(50).copy()
    holes.loc[0, "age_years"] = np.nan
    holes.loc[1, "purpose"] = np.nan
    with pytest.raises(DataError, match="missing values in columns 'purpose' \\(1\\), 'age_years' \\(1\\).*impute"):
        TableEncoder.fit(holes)
    encoder = TableEncoder.fit(holes, missing="impute")
    encoded = encoder.transform(holes)
    assert encoded[0, encoder.feature_names.index("age_years")] == pytest.approx(0.5)
    purpose = [i for i, name in enumerate(encoder.feature_names) if name.startswith("purpose=")]
    assert encoded[1, purpose].sum() == 0 and encoded[2, purpose].sum() == 1


def test_unknown_categories_and_bad_tables(german):
    encoder = TableEncoder.fit(german.features.head(100))
    new = german.features.head(3).copy()
    new.loc[0, "purpose"] = "A999"
    purpose = [i for i, name in enumerate(encoder.feature_names) if name.startswith("purpose=")]
    assert encoder.transform(new)[0, purpose].sum() == 0
    strict = TableEncoder.fit(german.features.head(100), unknown="error")
    with pytest.raises(DataError, match="'purpose' holds categories \\['A999'\\] not seen in training"):
        strict.transform(new)
    with pytest.raises(DataError, match="lacks columns \\['age_years'\\]"):
        encoder.transform(new.drop(columns="age_years"))
    with pytest.raises(DataError, match="encoding must be one of"):
        TableEncoder.fit(german.features, encoding="binary")


def _config(num_features=5, **layout):
    encoder = TableEncoder(numeric=[f"c{i}" for i in range(num_features)],
                           means={f"c{i}": 0.0 for i in range(num_features)},
                           scales={f"c{i}": 1.0 for i in range(num_features)})
    spec = InputSpec(modality="image", channels=3, height=8, width=10, value_range=(-1.0, 1.0))
    return TableToImageConfig.for_source(spec, encoder, **layout)


def test_layout_places_each_feature_in_its_own_cell():
    index = layout_index(5, _config(cell_height=2, cell_width=3, gap=1, cells_per_row=2, placement="top-left"))
    assert index.shape == (8, 10)
    assert (index[0:2, 0:3] == 0).all() and (index[0:2, 4:7] == 1).all() and (index[3:5, 0:3] == 2).all()
    assert (index[6:8, 0:3] == 4).all() and (index[2, :] == -1).all() and (index[:, 3] == -1).all()
    for feature in range(5):
        assert (index == feature).sum() == 6
    centred = layout_index(5, _config(cell_height=2, cell_width=3, gap=1, cells_per_row=2))
    assert (centred == 0).nonzero().min(dim=0).values.tolist() == [0, 1]  # grid 8x7 centred in 8x10


def test_a_layout_that_does_not_fit_says_what_to_change():
    with pytest.raises(DataError, match="need a 12x10 grid, but the canvas is 8x10; use smaller cells"):
        layout_index(20, _config(20, cell_height=3, cell_width=2, gap=0))
    with pytest.raises(DataError, match="placement must be one of"):
        _config(placement="middle")


def test_forward_draws_rows_and_perturbation_in_the_value_range():
    bridge = TableToImage(_config(cell_height=2, cell_width=2, placement="top-left"), seed=0)
    rows = torch.tensor([[0.0, 0.25, 0.5, 0.75, 1.0]])
    image = bridge(rows)
    assert image.shape == (1, 3, 8, 10)
    assert torch.allclose(image[0, :, 0, 0:10:2], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]).expand(3, 5))
    assert torch.allclose(image[0, :, 4:, :], torch.zeros(3, 4, 10))  # sigmoid(0) = 0.5 -> middle of (-1, 1)
    image.sum().backward()
    gradient = bridge.perturbation.grad[0]
    assert (gradient[bridge.index >= 0] == 0).all() and (gradient[bridge.index < 0] != 0).all()


def test_per_feature_views_draw_each_feature_alone_on_the_background():
    bridge = TableToImage(_config(cell_height=2, cell_width=2, placement="top-left", views="per-feature"), seed=0)
    rows = torch.tensor([[0.0, 0.25, 0.5, 0.75, 1.0]])
    assert bridge.views == 5 and TableToImage(_config()).views == 1
    all_cells = bridge(rows)
    for k in range(5):
        image = bridge(rows, view=k)
        own = bridge.index == k
        assert torch.equal(image[0][:, own], all_cells[0][:, own])  # feature k's square as in the full drawing
        assert torch.allclose(image[0][:, ~own], torch.zeros(3, int((~own).sum())))  # grey everywhere else
    with pytest.raises(DataError, match="views must be one of"):
        _config(views="both")


def test_bad_encoded_rows_are_refused():
    bridge = TableToImage(_config())
    with pytest.raises(DataError, match="shape \\(N, 5\\), got \\(2, 4\\).*bridge.encode"):
        bridge(torch.zeros(2, 4))
    with pytest.raises(DataError, match="NaN"):
        bridge(torch.full((1, 5), float("nan")))
    with pytest.raises(DataError, match="this source takes audio"):
        TableToImageConfig.for_source(InputSpec("audio", 16000, 16000), TableEncoder())


def test_config_round_trips_and_refuses_unknown_keys(german):
    encoder = TableEncoder.fit(german.features)
    config = TableToImageConfig.for_source(InputSpec("image", channels=1, height=40, width=32,
                                                     value_range=(-30.0, 12.0)), encoder)
    saved = json.loads(json.dumps(config.to_dict()))
    again = TableToImageConfig.from_dict(saved)
    assert again == config
    with pytest.raises(TypeError, match="unknown TableToImageConfig setting"):
        TableToImageConfig.from_dict({**saved, "from_a_newer_version": 1})
    bridge_a, bridge_b = TableToImage(config), TableToImage(again)
    rows = german.features.tail(20)
    assert torch.equal(bridge_a(bridge_a.encode(rows)), bridge_b(bridge_b.encode(rows)))


@pytest.mark.parametrize("reads", ["logits", "cells"])
def test_saved_table_reprogrammer_predicts_identically(german, tmp_path, reads):
    from sklearn.model_selection import train_test_split

    from adapters_modal import load_source
    from xmodal.maps import LinearHead
    from xmodal.persistence import load_reprogrammer, read_document, save_reprogrammer
    from xmodal.reprogrammer import Reprogrammer

    train, test = train_test_split(np.arange(1000), test_size=0.2, stratify=german.labels, random_state=0)
    train_rows, test_rows = german.features.iloc[np.sort(train)], german.features.iloc[np.sort(test)]
    source = load_source("bc-resnet-gsc35-image")
    encoder = TableEncoder.fit(train_rows, encoding="ordinal" if reads == "cells" else "onehot")
    layout = {"cell_size": None, "gap": 2} if reads == "cells" else {}
    bridge = TableToImage(TableToImageConfig.for_source(source.input_spec, encoder, **layout), seed=0)
    width = 464 * 20 if reads == "cells" else source.num_classes
    model = Reprogrammer(bridge, source, LinearHead(width, 2, seed=0), ["bad", "good"], reads=reads)
    with torch.no_grad():  # stands in for training: theta and omega away from their start
        for parameter in model.trainable_parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    save_reprogrammer(model, tmp_path / "run")
    loaded, document = load_reprogrammer(tmp_path / "run")
    assert loaded.reads == reads
    assert torch.equal(model.predict_proba(model.bridge.encode(test_rows)),
                       loaded.predict_proba(loaded.bridge.encode(test_rows)))
    config = read_document(tmp_path / "run")["bridge"]["config"]
    assert config["encoder"]["means"]["age_years"] == pytest.approx(train_rows["age_years"].mean())
    assert config["cell_height"] == config["cell_width"] == (6 if reads == "cells" else 2)  # the size drawn
    assert document["bridge"]["kind"] == "table_to_image"
    if reads == "logits":
        assert weights_file(tmp_path / "run").stat().st_size < 20000


def test_per_feature_views_refuse_the_cells_read_out_and_alignment(german):
    from adapters_modal import load_source
    from xmodal.maps import LinearHead
    from xmodal.reprogrammer import Reprogrammer
    from xmodal.risk_bound import reprogrammed_representations

    source = load_source("bc-resnet-gsc35-image")
    encoder = TableEncoder.fit(german.features, encoding="ordinal")
    config = TableToImageConfig.for_source(source.input_spec, encoder, cell_size=None, gap=1, views="per-feature")
    with pytest.raises(XmodalError, match="per-feature view draws one square alone"):
        Reprogrammer(TableToImage(config), source, LinearHead(20 * 464 * 20, 2), reads="cells")
    model = Reprogrammer(TableToImage(config), source, LinearHead(20 * 35, 2), reads="log_probs")
    rows = model.bridge.encode(german.features.head(3))
    assert model.source_logits(rows).shape == (3, 20 * 35)
    with pytest.raises(DataError, match="20 source inputs .* no single representation to align"):
        reprogrammed_representations(model, rows)


def test_a_table_run_saved_before_views_existed_reloads_as_one_image(german, tmp_path):
    """Format 5 saves have no `views` setting; they drew one image per row, whatever today's
    preset of the same name draws."""
    from xmodal.estimators.table import TableClassifier
    from xmodal.persistence import CONFIG_FILE

    rows, labels = german.features.head(120), german.labels[:120]
    model = TableClassifier(random_state=0).fit(rows, labels)
    folder = model.save_pretrained(tmp_path / "run")
    document = json.loads((folder / CONFIG_FILE).read_text())
    del document["metadata"]["settings"]["views"]
    document["metadata"]["preset"] = "blackbox"  # whose views are per-feature today
    (folder / CONFIG_FILE).write_text(json.dumps(document))
    again = TableClassifier.from_pretrained(folder)
    assert again.settings_ == {**model.settings_, "device": again.settings_["device"]}
    assert again.settings_["views"] == "one"
    np.testing.assert_array_equal(again.predict_proba(rows), model.predict_proba(rows))
