import pytest

from xlprompt.analysis.metrics import accuracy, macro_f1


def test_accuracy_counts_matches():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75


def test_macro_f1_matches_hand_computed_value():
    gold = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 0, 2]
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1, fn 0 -> 0.8; class 2: tp 1, fp 0, fn 1 -> 2/3
    assert macro_f1(gold, pred, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_macro_f1_counts_a_class_never_seen_as_zero():
    assert macro_f1([0, 0], [0, 0], 2) == pytest.approx(0.5)


def test_metrics_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="equally long"):
        accuracy([0, 1], [0])
