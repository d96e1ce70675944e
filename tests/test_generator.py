"""deconv.models.generator: the DCGAN-style networks, a short adversarial run, the judging
statistics against hand computations and independent references, reproducibility, and
``deconv train generator``'s settings."""

import io
import math
import os

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance

from deconv import data, nn
from deconv.gradcheck import gradcheck
from deconv.models import generator as gan
from deconv.models.recipes import SettingsError

#: A run small enough for a test: 8 channels, a 16-long latent, 256 digits, 8 epochs at lr 1e-3,
#: the weights averaged over about the last 10 steps.
TINY = gan.GanSettings(epochs=8, batch_size=32, lr=1e-3, latent=16, channels=8, seed=3, ema=0.9)


def _initial_generator(settings):
    """The generator as :func:`gan.train` initialises it (the first of its seed's streams)."""
    first = np.random.SeedSequence(settings.seed).spawn(5)[0]
    return gan.generator(settings.latent, settings.channels, rng=np.random.default_rng(first))


@pytest.fixture(scope="module")
def digits():
    return data.digits()


@pytest.fixture(scope="module")
def tiny_run(digits):
    return gan.train(digits.train.x[:256], TINY, progress=False)


# ---------------------------------------------------------------------------
# the networks
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("size", gan.IMAGE_SIZES)
def test_shapes_dtypes_and_the_dcgan_initialisation(size):
    G = gan.generator(latent=16, channels=8, image_size=size, rng=0)
    D = gan.discriminator(channels=8, image_size=size, rng=0)
    y = G(np.random.default_rng(0).standard_normal((5, 16, 1, 1)).astype(np.float32))
    assert y.shape == (5, 1, size, size) and y.dtype == np.float32
    assert np.all(np.abs(y) < 1)                                  # Tanh
    assert D(y).shape == (5, 1) and D(y).dtype == np.float32
    n_convt = sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules())
    assert n_convt == {8: 3, 16: 4}[size]
    assert any(isinstance(m, nn.LeakyReLU) for m in D.modules())
    conv_weights = np.concatenate([m.weight.data.ravel() for m in G.modules()
                                   if isinstance(m, nn.ConvTranspose2d)])
    assert abs(conv_weights.std() - 0.02) < 0.002 and abs(conv_weights.mean()) < 0.002
    bn = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(abs(m.weight.data.mean() - 1) < 0.01 and not m.bias.data.any() for m in bn)
    # the same seed gives the same weights (the forward above moved G's running statistics)
    G2 = gan.generator(latent=16, channels=8, image_size=size, rng=0)
    assert all(np.array_equal(a.data, b.data) for a, b in zip(G.parameters(), G2.parameters()))


def test_bad_image_size_and_widths_are_refused_naming_the_argument():
    with pytest.raises(ValueError, match="image_size must be one of 8, 16, got 32"):
        gan.generator(image_size=32)
    with pytest.raises(ValueError, match="channels"):
        gan.discriminator(channels=0)
    with pytest.raises(ValueError, match="batch_size must be at most the number of images"):
        gan.train(np.zeros((4, 1, 8, 8), np.float32), TINY)


def test_both_networks_match_central_differences_in_float64():
    rng = np.random.default_rng(1)
    G = gan.generator(latent=4, channels=2, dtype=np.float64, rng=0)
    D = gan.discriminator(channels=2, dtype=np.float64, rng=1)
    gradcheck(G, rng.standard_normal((3, 4, 1, 1)), max_full_size=64)
    x = np.tanh(rng.standard_normal((3, 1, 8, 8)))
    gradcheck(D, x, np.array([[1.0], [0.0], [1.0]]), loss=nn.BCEWithLogitsLoss(),
              max_full_size=64)


# ---------------------------------------------------------------------------
# adversarial training
# ---------------------------------------------------------------------------

def _pixel_frechet(images, reference):
    flat = lambda a: a.reshape(len(a), -1)
    return gan.frechet_distance_of(flat(images), flat(reference))


def test_a_short_run_moves_the_losses_as_expected_and_brings_samples_closer(digits, tiny_run):
    G, D, history = tiny_run
    assert len(history["d_loss"]) == TINY.epochs
    # the discriminator starts at chance (loss log 4, D = 1/2 on both) and learns to tell
    # real from generated: D(x) > D(G(z)) in every epoch, and its loss below chance
    assert all(r > f for r, f in zip(history["d_real"], history["d_fake"]))
    assert history["d_loss"][0] < math.log(4)
    # the generator's samples move toward the digits: in pixel space, the Fréchet distance
    # to the held-out digits falls well below that of the untrained generator
    untrained = _initial_generator(TINY)
    before = _pixel_frechet(gan.sample(untrained, 400, TINY.latent, seed=1), digits.val.x)
    after = _pixel_frechet(gan.sample(G, 400, TINY.latent, seed=1), digits.val.x)
    assert after < 0.5 * before, (before, after)


def test_seeded_runs_are_bitwise_reproducible(digits, tiny_run):
    G, D, history = tiny_run
    G2, D2, history2 = gan.train(digits.train.x[:256], TINY, progress=False)
    for a, b in ((G, G2), (D, D2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert {k: v for k, v in history.items() if k != "seconds"} == \
           {k: v for k, v in history2.items() if k != "seconds"}
    assert np.array_equal(gan.sample(G, 50, TINY.latent, seed=2),
                          gan.sample(G2, 50, TINY.latent, seed=2))
    G3, _, _ = gan.train(digits.train.x[:256], TINY._replace(epochs=1, seed=4), progress=False)
    G4, _, _ = gan.train(digits.train.x[:256], TINY._replace(epochs=1), progress=False)
    assert not np.array_equal(G3[0].weight.data, G4[0].weight.data)


def test_the_sampled_generator_holds_the_moving_average_of_the_trained_weights(digits):
    settings = TINY._replace(epochs=3, ema=0.5)
    trained = []                                   # one step per epoch: the weights after it

    def keep(epoch, G, D):
        trained.append([p.data.astype(np.float64) for p in G.parameters()])

    G, _, _ = gan.train(digits.train.x[:32], settings, progress=False, on_epoch=keep)
    average = [p.data.astype(np.float64) for p in _initial_generator(settings).parameters()]
    for weights in trained:
        average = [0.5 * a + 0.5 * w for a, w in zip(average, weights)]
    for p, a in zip(G.parameters(), average):
        np.testing.assert_allclose(p.data, a, rtol=1e-5, atol=1e-7)
    # its BatchNorm statistics are its own: the mean over 16 batches, none left from training
    norms = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(int(m.num_batches_tracked) == 16 and m.momentum == 0.1 for m in norms)
    assert not G.training
    # ema=0: the trained generator itself
    G0, _, _ = gan.train(digits.train.x[:32], settings._replace(ema=0.0), progress=False,
                         on_epoch=lambda epoch, G, D: keep(epoch, G, D))
    assert all(np.array_equal(p.data, w) for p, w in zip(G0.parameters(), trained[-1]))


def test_one_sided_label_smoothing_moves_only_the_real_images_term(digits):
    # one full batch: one step, whose discriminator loss is the BCE of the initial D
    x = digits.train.x[:32]
    settings = TINY._replace(epochs=1, batch_size=32, ema=0.0)
    _, _, plain = gan.train(x, settings, progress=False)
    _, _, smooth = gan.train(x, settings._replace(real_target=0.9), progress=False)
    # BCE(l, t) = softplus(l) - t l: lowering the real target from 1 to 0.9 adds 0.1 mean(l),
    # l the initial discriminator's logits on the real batch (BatchNorm on batch statistics)
    second = np.random.SeedSequence(settings.seed).spawn(5)[1]
    D = gan.discriminator(settings.channels, dtype=np.float64, rng=np.random.default_rng(second))
    logits = D(gan.to_model_space(x.astype(np.float64), 8))
    assert smooth["d_loss"][0] - plain["d_loss"][0] == pytest.approx(0.1 * logits.mean(),
                                                                     rel=1e-3, abs=1e-6)
    assert smooth["d_real"] == plain["d_real"] and smooth["d_fake"] == plain["d_fake"]
    assert smooth["g_loss"] != plain["g_loss"]          # through the discriminator's update
    with pytest.raises(ValueError, match="real_target"):
        gan.train(x, settings._replace(real_target=0.4), progress=False)


def test_progress_lines_and_the_epoch_callback(digits):
    seen, stream = [], io.StringIO()
    gan.train(digits.train.x[:64], TINY._replace(epochs=2), stream=stream,
              on_epoch=lambda epoch, G, D: seen.append(epoch))
    assert seen == [1, 2]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2: D loss ")


def test_sixteen_pixel_samples_come_back_as_eight_pixel_digits(digits):
    x = digits.train.x[:5]
    up = gan.to_model_space(x, 16)
    assert up.shape == (5, 1, 16, 16) and up.min() >= -1 and up.max() <= 1
    G = gan.generator(latent=4, channels=2, image_size=16, rng=0)
    s = gan.sample(G, 3, 4, seed=0)
    assert s.shape == (3, 1, 8, 8) and s.dtype == np.float32 and 0 < s.min() <= s.max() < 1
    # the 2x2 block means of the 16x16 output
    z = np.random.default_rng(0).standard_normal((3, 4, 1, 1)).astype(np.float32)
    full = (G(z) + 1) / 2
    np.testing.assert_allclose(s, full.reshape(3, 1, 8, 2, 8, 2).mean(axis=(3, 5)), atol=1e-6)


# ---------------------------------------------------------------------------
# the Fréchet distance
# ---------------------------------------------------------------------------

def test_frechet_distance_of_known_gaussians_by_hand():
    # diagonal: |m1 - m2|^2 + sum (sqrt a_i - sqrt b_i)^2 = 9 + (1 + 1 + 4)
    m1, s1 = np.zeros(3), np.diag([1.0, 4.0, 9.0])
    m2, s2 = np.array([1.0, 2.0, 2.0]), np.diag([4.0, 1.0, 1.0])
    assert gan.frechet_distance(m1, s1, m2, s2) == pytest.approx(15.0, rel=1e-12)
    # rotating both Gaussians together changes nothing
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    assert gan.frechet_distance(q @ m1, q @ s1 @ q.T, q @ m2, q @ s2 @ q.T) == \
        pytest.approx(15.0, rel=1e-10)
    # S1 = I, S2 with eigenvalues 3 and 1: tr(I + S2 - 2 S2^(1/2)) = (1 - sqrt 3)^2 + 0
    s2 = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert gan.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), s2) == \
        pytest.approx((1 - math.sqrt(3)) ** 2, rel=1e-12)
    # equal Gaussians, and a singular covariance against itself
    s3 = np.outer([1.0, 2.0, 0.0], [1.0, 2.0, 0.0])
    assert gan.frechet_distance(m2, s3, m2, s3) == pytest.approx(0.0, abs=1e-12)


def test_frechet_distance_against_scipy_sqrtm_on_non_commuting_covariances():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((6, 6)), rng.standard_normal((6, 6))
    s1, s2 = a @ a.T, b @ b.T
    m1, m2 = rng.standard_normal(6), rng.standard_normal(6)
    expected = (np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2)
                - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)
    assert gan.frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-9)
    assert gan.frechet_distance(m2, s2, m1, s1) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_samples_tends_to_that_of_their_gaussians():
    rng = np.random.default_rng(2)
    s1 = np.array([[1.0, 0.5], [0.5, 2.0]])
    s2 = np.array([[3.0, -1.0], [-1.0, 1.0]])
    a = rng.multivariate_normal([0.0, 0.0], s1, size=200_000)
    b = rng.multivariate_normal([1.0, -1.0], s2, size=200_000)
    exact = gan.frechet_distance([0, 0], s1, [1, -1], s2)
    assert gan.frechet_distance_of(a, b) == pytest.approx(exact, rel=0.02)
    with pytest.raises(ValueError, match="same F"):
        gan.frechet_distance_of(a, b[:, :1])
    with pytest.raises(ValueError, match=r"cov2 must have shape \(2, 2\)"):
        gan.frechet_distance([0, 0], s1, [0, 0], np.eye(3))


# ---------------------------------------------------------------------------
# the Gaussian baseline
# ---------------------------------------------------------------------------

def test_gaussian_baseline_is_fitted_with_full_covariance_and_sampled_from_it(digits):
    x = digits.train.x
    mean, cov = gan.fit_gaussian(x)
    flat = x.reshape(len(x), -1).astype(np.float64)
    centred = flat - flat.sum(axis=0) / len(flat)
    np.testing.assert_allclose(mean, flat.sum(axis=0) / len(flat), rtol=1e-12)
    np.testing.assert_allclose(cov, centred.T @ centred / (len(flat) - 1), atol=1e-12)
    assert cov.shape == (64, 64) and np.abs(cov - np.diag(np.diag(cov))).max() > 0.01  # full
    samples = gan.gaussian_samples(mean, cov, 100_000, (1, 8, 8), seed=0, dtype=np.float64)
    assert samples.shape == (100_000, 1, 8, 8)
    s = samples.reshape(len(samples), -1)
    np.testing.assert_allclose(s.mean(axis=0), mean, atol=0.01)
    np.testing.assert_allclose(np.cov(s, rowvar=False), cov, atol=0.01)
    # pixels that never vary in the training digits (the left column's corners) stay put
    still = np.diag(cov) == 0
    assert still.any() and np.abs(s[:, still] - mean[still]).max() < 1e-6
    # seeded; float32 by default
    a = gan.gaussian_samples(mean, cov, 5, (1, 8, 8), seed=3)
    assert a.dtype == np.float32 and np.array_equal(a, gan.gaussian_samples(mean, cov, 5,
                                                                            (1, 8, 8), seed=3))


# ---------------------------------------------------------------------------
# memorisation
# ---------------------------------------------------------------------------

def test_nearest_distances_match_scipy_cdist():
    rng = np.random.default_rng(0)
    a, b = rng.random((37, 1, 8, 8)), rng.random((50, 1, 8, 8))
    expected = scipy.spatial.distance.cdist(a.reshape(37, -1), b.reshape(50, -1)).min(axis=1)
    np.testing.assert_allclose(gan.nearest_distances(a, b, batch_size=8), expected, rtol=1e-9)
    distance, index = gan.nearest_distances(a, b, batch_size=8, return_index=True)
    full = scipy.spatial.distance.cdist(a.reshape(37, -1), b.reshape(50, -1))
    assert np.array_equal(index, full.argmin(axis=1))


def test_memorisation_check_fails_copies_and_passes_new_digits(digits):
    train, held_out = digits.train.x, digits.val.x
    copies = train[np.random.default_rng(0).integers(0, len(train), 300)]
    m = gan.memorisation(copies, train, held_out)
    assert m["sample_median"] == 0.0 and m["held_out_median"] > 0.5 and m["memorises"]
    # copies with a little noise are still nearer than new writers' digits
    noisy = np.clip(copies + 0.02 * np.random.default_rng(1).standard_normal(copies.shape), 0, 1)
    assert gan.memorisation(noisy, train, held_out)["memorises"]
    # new digits are not memorised: the held-out digits themselves give the equal median
    m = gan.memorisation(held_out, train, held_out)
    assert m["sample_median"] == m["held_out_median"] and not m["memorises"]


# ---------------------------------------------------------------------------
# the judge and deconv train generator
# ---------------------------------------------------------------------------

def test_evaluate_on_real_digits_and_on_the_gaussian(digits):
    net = gan.train_judge(digits, epochs=3)
    probs, feats = gan.judge_outputs(net, digits.val.x[:7])
    assert probs.shape == (7, 10) and feats.shape == (7, 64)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-12)
    m = gan.evaluate(digits.val.x, net, digits)
    assert m["frechet"] == pytest.approx(0.0, abs=1e-9) and not m["memorises"]
    assert sum(m["class_shares"]) == pytest.approx(1.0) and len(m["class_shares"]) == 10
    mean, cov = gan.fit_gaussian(digits.train.x)
    g = gan.evaluate(gan.gaussian_samples(mean, cov, 500, (1, 8, 8)), net, digits)
    assert g["frechet"] > 1.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(scale=2), "scale"), (dict(upsample="deconv"), "upsample"),
    (dict(optimizer="sgd"), "optimizer"), (dict(momentum=0.9), "momentum"),
    (dict(resume="runs/generator"), "resume"), (dict(epochs=-1), "epochs"),
    (dict(lr=0.0), "lr"), (dict(batch_size=0), "batch_size"),
])
def test_run_refuses_settings_that_do_not_apply_before_any_work(kwargs, match, tmp_path):
    with pytest.raises(SettingsError, match=match):
        gan.run(out=str(tmp_path), **kwargs)
    assert not list(tmp_path.iterdir())


def test_run_names():
    assert gan.run_name(gan.DEFAULTS) == "generator"
    assert gan.run_name(gan.QUICK, quick=True) == "generator-quick"
    assert gan.run_name(gan.DEFAULTS._replace(epochs=50, seed=1)) == "generator-epochs50-seed1"


def test_deconv_train_generator_refuses_options_of_other_families(tmp_path, capsys):
    from deconv.cli import main

    with pytest.raises(SystemExit) as err:
        main(["train", "generator", "--scale", "2", "--out", str(tmp_path)])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "--scale" in message and "generator" in message
    assert not list(tmp_path.iterdir())


def test_one_epoch_run_prints_the_judgement_and_writes_weights_and_figure(tmp_path):
    stream = io.StringIO()
    result = gan.run(epochs=1, out=str(tmp_path), stream=stream, progress="none")
    text = stream.getvalue()
    assert result["settings"].epochs == 1 and len(result["history"]["d_loss"]) == 1
    assert os.path.basename(os.path.dirname(result["checkpoint"])) == "generator-epochs1"
    weights = nn.load_weights(result["checkpoint"])
    assert "generator.0.weight" in weights and "discriminator.0.weight" in weights
    assert os.path.getsize(result["figure"]) > 10_000
    for word in ("judge accuracy", "gaussian", "held-out", "confident >= 80%", "Frechet"):
        assert word in text
    assert 0.85 < result["judge_accuracy"] <= 1
    # the held-out digits judged as samples: nothing memorised, the judge's own confidence
    assert result["baselines"]["held-out"]["sample_median"] == \
        result["baselines"]["held-out"]["held_out_median"]
    assert result["beats_baseline"] == all(result["checks"].values())
