"""The kernel probe and the kernel head that holds it, against scikit-learn's own RBF SVM on real UCR series."""

import numpy as np
import pytest
import torch
from sklearn.svm import SVC

from tests.conftest import UCR
from xmodal.data.ucr import load_ucr
from xmodal.errors import DataError, XmodalError
from xmodal.maps import KernelHead, output_map_from_settings
from xmodal.training.kernel_probe import KERNEL_C, KERNEL_MAX_ROWS, fit_kernel_probe


def _as_tensors(x, labels):
    classes, y = np.unique(labels, return_inverse=True)
    return torch.tensor(x.reshape(len(x), -1), dtype=torch.float64), torch.tensor(y), len(classes)


def _held(probe, num_source, num_target):
    head = KernelHead(num_source, num_target)
    head.load_probe(probe)
    return head


def test_the_head_decides_as_scikit_learns_rbf_svm(gunpoint):
    x, y, k = _as_tensors(gunpoint.x_train, gunpoint.y_train)
    probe = fit_kernel_probe(x, y, seed=0)
    assert probe.c in KERNEL_C and probe.cv_log_loss is not None and probe.gamma == 1 / x.shape[1]
    z = (x.numpy() - probe.mean) / probe.scale
    reference = SVC(C=probe.c, kernel="rbf", gamma=probe.gamma).fit(z, y.numpy() == 1)
    test = torch.tensor(gunpoint.x_test.reshape(len(gunpoint.x_test), -1))
    head = _held(probe, x.shape[1], k)
    logits = head(test.float())
    # the head's log-scores are its sigmoid of the decision: recover the decision and compare
    decision = ((logits[:, 1] - logits[:, 0]) - probe.calibration_bias[1]) / probe.calibration_weight[1, 0]
    expected = reference.decision_function((test.numpy() - probe.mean) / probe.scale)
    assert np.allclose(decision.detach().numpy(), expected, atol=1e-3)
    assert len(probe.support) == reference.n_support_.sum()
    accuracy = (logits.argmax(dim=1).numpy() == np.unique(gunpoint.y_test, return_inverse=True)[1]).mean()
    assert accuracy > 0.85  # GunPoint's raw series: an RBF SVM is about 0.9 here


def test_more_classes_get_one_decision_each_and_probabilities_that_sum_to_one():
    cbf = load_ucr("CBF", UCR)
    x, y, k = _as_tensors(cbf.x_train, cbf.y_train)
    probe = fit_kernel_probe(x, y, seed=0)
    assert k == 3 and probe.dual.shape[1] == 3 and probe.calibration_weight.shape == (3, 3)
    test = torch.tensor(cbf.x_test.reshape(len(cbf.x_test), -1), dtype=torch.float32)
    probabilities = _held(probe, x.shape[1], k)(test).softmax(dim=1)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(len(test)))
    assert (probabilities.argmax(dim=1).numpy() == np.unique(cbf.y_test, return_inverse=True)[1]).mean() > 0.85


def test_a_given_c_is_kept_and_a_one_example_class_gets_no_folds(gunpoint):
    x, y, _ = _as_tensors(gunpoint.x_train, gunpoint.y_train)
    given = fit_kernel_probe(x, y, seed=0, c=10.0)
    assert given.c == 10.0 and given.cv_log_loss is None
    single = torch.cat([y[:-1], torch.tensor([2])])  # the last series alone in a third class
    lonely = fit_kernel_probe(x, single, seed=0)
    assert lonely.c == 1.0 and lonely.cv_log_loss is None and lonely.dual.shape[1] == 3


def test_a_saved_heads_settings_rebuild_its_shapes_and_a_mismatch_is_refused(gunpoint):
    x, y, k = _as_tensors(gunpoint.x_train, gunpoint.y_train)
    head = _held(fit_kernel_probe(x, y, seed=0), x.shape[1], k)
    rebuilt = output_map_from_settings(head.settings())
    rebuilt.load_state_dict(head.state_dict())
    test = torch.tensor(gunpoint.x_test.reshape(len(gunpoint.x_test), -1), dtype=torch.float32)
    assert torch.equal(rebuilt(test), head(test))
    with pytest.raises(XmodalError, match="cannot be held by a head of 10 and 2"):
        KernelHead(10, 2).load_probe(fit_kernel_probe(x, y, seed=0, c=1.0))


def test_a_widened_head_ignores_the_features_after_its_own_and_takes_another_count_of_support_rows(gunpoint):
    """The trained view's start state: the start's head in the model that reads two readings side by side."""
    x, y, k = _as_tensors(gunpoint.x_train, gunpoint.y_train)
    head = _held(fit_kernel_probe(x, y, seed=0), x.shape[1], k)
    test = torch.tensor(gunpoint.x_test, dtype=torch.float32)
    wide = head.widened(x.shape[1])
    assert wide.num_source == 2 * x.shape[1] and wide.gamma == head.gamma
    torch.testing.assert_close(wide(torch.cat([test, test.flip(0) * 3], dim=1)), head(test), rtol=1e-5, atol=1e-4)
    half = _held(fit_kernel_probe(x[::2], y[::2], seed=0), x.shape[1], k)
    assert len(half.support) != len(head.support)
    head.load_state_dict(half.state_dict())  # the support rows are the probe's own: the buffers take its count
    assert torch.equal(head(test), half(test))
    with pytest.raises(RuntimeError, match="size mismatch"):  # another number of features is another head
        head.load_state_dict(wide.state_dict())
    torn = {**half.state_dict(), "dual": half.dual[:-1]}  # support rows without as many weights: refused too
    with pytest.raises(RuntimeError, match="size mismatch"):
        _held(fit_kernel_probe(x, y, seed=0), x.shape[1], k).load_state_dict(torn)


def test_more_records_than_a_kernel_can_hold_are_refused_before_the_kernel(gunpoint):
    x, y, _ = _as_tensors(gunpoint.x_train, gunpoint.y_train)
    copies = KERNEL_MAX_ROWS // len(x) + 1  # GunPoint's 50 series, repeated past the limit
    with pytest.raises(DataError, match=f"a kernel head on {copies * len(x)} records needs") as caught:
        fit_kernel_probe(x.repeat(copies, 1), y.repeat(copies), seed=0)
    assert "\n" not in str(caught.value) and "head='linear'" in str(caught.value)
