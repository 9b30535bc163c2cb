"""Feature networks: pyramid shapes for any input size in 2D and 3D, every weight trained, identity
pyramid by hand, bad input."""

import pytest
import torch

from lightning_reg.nn import EncoderFeatures, IdentityFeatures, LKUNet, UNet

LEARNED = [UNet, LKUNet, EncoderFeatures]


@pytest.mark.parametrize("network", LEARNED + [IdentityFeatures])
@pytest.mark.parametrize("dims, shape", [(2, (37, 50)), (3, (13, 18, 11))])
def test_pyramid_shapes_for_sizes_that_are_not_powers_of_two(network, dims, shape):
    net = network(dims=dims)
    pyramid = net(torch.rand(2, 1, *shape))
    expected_channels = 1 if network is IdentityFeatures else 16
    assert [tuple(level.shape) for level in pyramid] == [(2, expected_channels, *s) for s in net.output_shapes(shape)]
    assert net.output_shapes(shape)[-1] == shape
    assert net.output_shapes(shape)[0] == tuple(-(-n // 4) for n in shape)


@pytest.mark.parametrize("network", LEARNED)
def test_channels_and_scales_are_configurable_and_every_weight_gets_a_gradient(network):
    net = network(dims=2, in_channels=2, out_channels=[8, 4], scales=(8, 2), norm="group")
    pyramid = net(torch.rand(1, 2, 40, 33))
    assert [level.shape[1] for level in pyramid] == [8, 4]
    assert [tuple(level.shape[2:]) for level in pyramid] == [(5, 5), (20, 17)]
    sum(level.pow(2).mean() for level in pyramid).backward()
    missing = [name for name, parameter in net.named_parameters() if parameter.grad is None]
    assert not missing, f"parameters that never influence the output: {missing}"


def test_identity_pyramid_is_the_block_averaged_image():
    image = torch.arange(64.0).reshape(1, 1, 8, 8)
    coarse, middle, fine = IdentityFeatures(dims=2)(image)
    assert torch.equal(fine, image)
    assert float(coarse[0, 0, 0, 0]) == pytest.approx(float(image[0, 0, :4, :4].mean()))
    assert float(middle[0, 0, 1, 2]) == pytest.approx(float(image[0, 0, 2:4, 4:6].mean()))
    assert list(IdentityFeatures().parameters()) == []


def test_same_weights_give_the_same_features_for_the_same_image():
    torch.manual_seed(0)
    net = UNet(dims=3).eval()
    image = torch.rand(1, 1, 12, 12, 12)
    batch = net(torch.cat([image, image]))
    assert all(torch.allclose(level[0], level[1], atol=1e-6) for level in batch)


@pytest.mark.parametrize(
    "image, message",
    [
        (torch.rand(1, 1, 8, 8, 8), "2D network"),
        (torch.rand(1, 3, 16, 16), "input channel"),
        (torch.rand(1, 1, 0, 16), "empty"),
    ],
)
def test_bad_images_get_clear_errors(image, message):
    with pytest.raises(ValueError, match=message):
        UNet(dims=2)(image)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(scales=(3, 1)), "powers of two"),
        (dict(scales=(1, 2)), "coarse to fine"),
        (dict(out_channels=[16, 8]), "one per scale"),
        (dict(norm="batch"), "unknown norm"),
        (dict(block="transformer"), "unknown block"),
        (dict(widths=[8, 16]), "coarsest scale"),
        (dict(dims=4), "dims must be 2 or 3"),
    ],
)
def test_bad_settings_get_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        UNet(**options)
