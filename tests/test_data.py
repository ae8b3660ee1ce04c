"""The data contract rejects malformed files with the file and the problem in the message."""

import pandas as pd
import pytest

from xlprompt.data.contract import load_labels, load_split, write_split

GOOD = pd.DataFrame({"id": ["a", "b"], "text": ["x y", "z"], "text_pair": [None, None], "label": [0, 1]})


def write(tmp_path, frame):
    path = tmp_path / "en" / "train.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def test_a_good_split_round_trips(tmp_path):
    write_split(GOOD, tmp_path, "en", "train")
    frame = load_split(tmp_path, "en", "train", n_labels=2)
    assert list(frame["label"]) == [0, 1]
    assert frame["text_pair"].isna().all()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (GOOD.drop(columns=["text_pair"]), r"missing column\(s\) \['text_pair'\]"),
        (GOOD.assign(label=[0, 5]), "row 1 has label 5, outside 0..1"),
        (GOOD.assign(label=[-1, 0]), "row 0 has label -1"),
        (GOOD.iloc[:0], "the split is empty"),
        (GOOD.assign(text=[7, 3]), "row 0: column 'text' is not a string"),
        (GOOD.assign(id=["a", "a"]), "duplicated id 'a'"),
        (GOOD.assign(label=["0", "1"]), "column 'label' must be integers"),
        (GOOD.assign(label=[0, None]), "row 1: column 'label' is empty"),
        (GOOD.assign(text=["x y", "  "]), "row 1: column 'text' is blank"),
        (GOOD.assign(text_pair=[None, 3]), "row 1: column 'text_pair' must be a string or empty"),
        (GOOD.assign(id=["a", None]), "row 1: column 'id' must be a non-empty string"),
    ],
    ids=[
        "missing-column",
        "label-too-large",
        "negative-label",
        "empty",
        "text-not-string",
        "duplicate-id",
        "label-not-int",
        "label-missing",
        "text-blank",
        "pair-not-string",
        "id-missing",
    ],
)
def test_malformed_split_is_rejected_naming_file_and_problem(tmp_path, frame, message):
    path = write(tmp_path, frame)
    with pytest.raises(ValueError, match=message) as err:
        load_split(tmp_path, "en", "train", n_labels=2)
    assert str(path) in str(err.value)


def test_truncated_parquet_is_rejected(tmp_path):
    path = write(tmp_path, GOOD)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="cannot be read as parquet") as err:
        load_split(tmp_path, "en", "train")
    assert str(path) in str(err.value)


def test_missing_split_names_the_language(tmp_path):
    with pytest.raises(FileNotFoundError, match="no test split for language 'xx'"):
        load_split(tmp_path, "xx", "test")


def test_labels_json_with_a_short_verbalizer_is_rejected(tmp_path):
    (tmp_path / "labels.json").write_text('{"task": "t", "names": ["a", "b"], "verbalizers": {"masked_lm": ["x"]}}')
    with pytest.raises(ValueError, match="has 1 words for 2 labels"):
        load_labels(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"task": "t", "names": ["a"', "not valid JSON"),
        ('{"task": "t", "names": ["a", "b"]}', "missing key 'verbalizers'"),
    ],
    ids=["labels-not-json", "labels-missing-key"],
)
def test_a_malformed_labels_json_is_rejected_naming_it(tmp_path, content, message):
    (tmp_path / "labels.json").write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        load_labels(tmp_path)
    assert str(tmp_path / "labels.json") in str(err.value)


def test_text_that_is_not_utf8_is_rejected_naming_file_and_byte(tmp_path):
    from xlprompt.models.mlm import read_documents
    from xlprompt.models.tiny import learn_vocabulary

    corpus = tmp_path / "de.txt"
    corpus.write_bytes("gr\u00fc\u00dfe aus k\u00f6ln\n".encode("latin-1"))  # a Latin-1 file where UTF-8 belongs
    for read in (lambda: read_documents([corpus]), lambda: learn_vocabulary([corpus], 100)):
        with pytest.raises(ValueError, match=r"de.txt: not UTF-8 text \(byte 2: invalid") as err:
            read()
        assert str(corpus) in str(err.value)
