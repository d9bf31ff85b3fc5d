import dataclasses

import numpy as np

from harness.checks.localisation import QUICK_CHECKS, check_chain, localise
from harness.core.mapping_cases import sample_cases
from harness.networks.cnn import cnn
from harness.networks.end_to_end import network_mapping, node_cases
from tests.networks.providers import numpy_provider
from tests.operator_corpus import convolution as conv
from tests.operator_corpus import pooling as pool


class MaxPool2dFirstTap(pool.MaxPool2d):
    """max_pool2d backward sends each window's gradient to its first tap, not to its maximum."""

    def choose(self, w, top):
        first = np.zeros(w.shape, dtype=w.dtype)
        first[..., 0] = 1
        return first


def small_cnn():
    """The CNN's chain at a size that checks in a second: 2 channels, 4x4 images."""
    return cnn(channels=2, image=4)


def chain_check(*swapped, dtype="float64", label="torch's initialisation, pixels in [0, 1)"):
    net, provider = small_cnn(), numpy_provider(*swapped)
    mapping = network_mapping(net, provider)
    case = next(c for c in sample_cases(mapping, dtype) if c.label == label)
    return check_chain(mapping, lambda c: node_cases(net, provider, c), case)


def test_a_wrong_conv2d_weight_gradient_is_localised_to_conv2d():
    checked = chain_check(conv.Conv2dWeightGradReversed)
    assert not checked.ok
    assert [link.label for link in checked.localisation.culprits] == ["conv2d (node 0 of cnn)"]
    assert "vjp_matches_oracle" in checked.localisation.culprits[0].failed_checks
    vjp = next(r for r in checked.localisation.culprits[0].results if r.check == "vjp_matches_oracle")
    assert [t.name for t in vjp.tensors if t.verdict.value == "FAIL"] == ["w"]  # the weight gradient, not x's or b's
    assert checked.localisation.summary().startswith("localised to conv2d (node 0 of cnn): vjp_matches_oracle")


def test_a_wrong_max_pool2d_backward_is_localised_to_max_pool2d_in_float32():
    checked = chain_check(MaxPool2dFirstTap, dtype="float32")
    assert not checked.ok
    assert [link.label for link in checked.localisation.culprits] == ["max_pool2d (node 2 of cnn)"]


def test_a_correct_chain_is_not_localised():
    checked = chain_check()
    assert checked.ok and checked.localisation is None


def test_a_wrong_chain_of_correct_links_says_the_joins_are_wrong():
    """The chain's own backward doubles the gradient: no link is to blame, and the report says so."""
    net, provider = small_cnn(), numpy_provider()
    mapping = network_mapping(net, provider)
    doubled = dataclasses.replace(mapping, vjp=lambda inputs, ct: tuple(None if g is None else 2 * g
                                                                        for g in mapping.vjp(inputs, ct)))
    case = next(c for c in sample_cases(mapping, "float64") if c.label.endswith("pixels in [0, 1)"))
    checked = check_chain(doubled, lambda c: node_cases(net, provider, c), case)
    assert not checked.ok and checked.localisation.culprits == []
    assert "every operator passes its own checks" in checked.localisation.summary()
    # every link got the element-by-element checks too, since the quick ones flagged none
    assert all(len(link.results) > len(QUICK_CHECKS) for link in checked.localisation.links)


def test_localise_runs_every_check_only_on_links_the_quick_checks_flag():
    net, provider = small_cnn(), numpy_provider(conv.Conv2dWeightGradReversed)
    mapping = network_mapping(net, provider)
    case = next(c for c in sample_cases(mapping, "float64") if c.label.endswith("pixels in [0, 1)"))
    found = localise(node_cases(net, provider, case))
    full = [link.label for link in found.links if len(link.results) > len(QUICK_CHECKS)]
    assert full == ["conv2d (node 0 of cnn)"]
