"""The gradient-checking helpers themselves, checked on functions with known derivatives."""
import numpy as np
import pytest

from course_lib import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)


def test_rel_error_matches_the_contract_formula():
    x = np.array([1.0, 0.0, -2.0])
    y = np.array([1.1, 0.0, -2.0])
    # max(|x-y| / max(1e-8, |x|+|y|)): only the first entry differs, 0.1 / 2.1.
    assert rel_error(x, y) == pytest.approx(0.1 / 2.1)
    # Both zero: the 1e-8 floor keeps the ratio at 0 instead of 0/0.
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_eval_numerical_gradient_of_sum_of_squares_is_2x(rng):
    x = rng.standard_normal((3, 4))
    grad = eval_numerical_gradient(lambda z: np.sum(z ** 2), x, verbose=False)
    # Centred differences are exact for quadratics up to rounding (~1e-11 / 1e-5).
    assert rel_error(grad, 2 * x) < 1e-8


def test_eval_numerical_gradient_restores_x(rng):
    x = rng.standard_normal(5)
    before = x.copy()
    eval_numerical_gradient(lambda z: np.sum(np.sin(z)), x, verbose=False)
    np.testing.assert_array_equal(x, before)


def test_eval_numerical_gradient_array_is_the_vector_jacobian_product(rng):
    x = rng.standard_normal((2, 3))
    df = rng.standard_normal((2, 3))
    grad = eval_numerical_gradient_array(np.tanh, x, df)
    # d/dx sum(tanh(x) * df) = (1 - tanh(x)^2) * df; O(h^2) error ~ 1e-10 relative.
    assert rel_error(grad, (1 - np.tanh(x) ** 2) * df) < 1e-8


def test_grad_check_sparse_reports_small_errors_for_a_right_gradient(rng, capsys):
    x = rng.standard_normal((4, 5))
    errors = grad_check_sparse(lambda z: np.sum(z ** 3), x, 3 * x ** 2, num_checks=6)
    assert len(errors) == 6 and max(errors) < 1e-7
    assert "relative error" in capsys.readouterr().out


def test_grad_check_sparse_reports_large_errors_for_a_wrong_gradient(rng):
    x = rng.standard_normal((4, 5))
    errors = grad_check_sparse(lambda z: np.sum(z ** 3), x, 2 * x ** 2, num_checks=6)
    assert min(errors) > 0.1  # 2x^2 vs 3x^2: relative error exactly 1/5


def test_gradient_helpers_reject_integer_arrays():
    with pytest.raises(TypeError, match="x must be a float ndarray"):
        eval_numerical_gradient(lambda z: 0.0, np.arange(3), verbose=False)


def test_grad_check_sparse_with_a_seed_checks_the_same_positions(rng, capsys):
    x = rng.standard_normal((6, 7))
    grad = np.cos(x) * np.arange(42.0).reshape(6, 7)  # wrong on purpose: errors identify positions
    first = grad_check_sparse(lambda z: np.sum(np.sin(z)), x, grad, num_checks=5, seed=3)
    second = grad_check_sparse(lambda z: np.sum(np.sin(z)), x, grad, num_checks=5, seed=3)
    assert first == second
