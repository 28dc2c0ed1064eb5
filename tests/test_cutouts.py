import torch

from musivid.images import cutouts as cut
from musivid import rng


def test_batched_cutouts_match_the_reference_crop_and_resize():
    torch.manual_seed(0)
    images = torch.rand(3, 3, 64, 64)
    boxes = cut.sample_boxes(torch.tensor([1, 2, 3]), 5, 6, resolution=64)
    out = cut.make_cutouts(images, boxes, 32)
    assert out.shape == (18, 3, 32, 32)
    for i in range(3):
        for c in range(6):
            ref = cut.crop_resize_reference(images[i:i + 1], boxes[i, c], 32)[0]
            # identical pixel positions; tolerance for float rounding only
            assert torch.allclose(ref, out[i * 6 + c], atol=1e-5)


def test_boxes_depend_only_on_seed_step_and_index():
    s = torch.tensor([11, 22, 33])
    a = cut.sample_boxes(s, 7, 8)
    assert torch.equal(a[1:2], cut.sample_boxes(s[1:2], 7, 8))  # batch-independent
    assert not torch.equal(a, cut.sample_boxes(s, 8, 8))  # changes per step
    side = a[..., 0]
    assert torch.all(side >= 0.5) and torch.all(side <= 0.95)
    assert torch.all(a[..., 1] + side <= 1 + 1e-6) and torch.all(a[..., 2] + side <= 1 + 1e-6)


def test_seed_for_is_stable_and_distinct():
    assert rng.seed_for(0, "a line", 0) == rng.seed_for(0, "a line", 0)
    assert len({rng.seed_for(0, "a line", v) for v in range(50)}) == 50
    assert rng.seed_for(1, "a line", 0) != rng.seed_for(0, "a line", 0)
