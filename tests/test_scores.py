import pytest

from regrow.core.scores import edit_scores, pass_at_k


def test_identical_texts_have_no_error_and_full_similarity():
    assert edit_scores("return x", "return x") == (0, 1.0, 0.0)


def test_similarity_divides_by_the_longer_text_and_error_by_the_original():
    dist, sim, err = edit_scores("abcd", "abxdef")  # substitute c->x, insert e, f
    assert dist == 3
    assert sim == pytest.approx(1 - 3 / 6)
    assert err == pytest.approx(3 / 4)


def test_empty_texts():
    assert edit_scores("", "") == (0, 1.0, 0.0)
    assert edit_scores("", "x")[2] == 1.0


def test_pass_at_k_matches_the_unbiased_estimator():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # 1 - C(7,2)/C(10,2) = 1 - 21/45
    assert pass_at_k(10, 3, 2) == pytest.approx(1 - 21 / 45)
    assert pass_at_k(5, 4, 2) == 1.0  # n - c < k: every pair holds a correct sample
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)
