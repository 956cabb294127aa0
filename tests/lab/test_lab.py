import numpy as np
import pytest

from tidu import lab
from tidu.optimizers import SGD, Adam
from tidu.optimizers.base import numerical_gradient


@pytest.mark.parametrize("name", list(lab.FUNCTIONS))
def test_gradients_match_central_differences(name, rng):
    fn = lab.get(name)
    for _ in range(5):
        p = np.array([rng.uniform(*fn.xlim), rng.uniform(*fn.ylim)]) * 0.5
        np.testing.assert_allclose(fn.gradient(p), numerical_gradient(fn, p), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in lab.FUNCTIONS if lab.FUNCTIONS[n].minima])
def test_minima_are_minima(name):
    fn = lab.get(name)
    for m in fn.minima:
        assert fn(np.array(m)) < 1e-8
        np.testing.assert_allclose(fn.gradient(np.array(m)), 0, atol=1e-4)


def test_beale_at_a_hand_worked_point():
    # (x, y) = (1, 1): (1.5 - 1 + 1)^2 + (2.25 - 1 + 1)^2 + (2.625 - 1 + 1)^2 = 2.25 + 5.0625 + 6.890625
    assert lab.get("beale")(np.array([1.0, 1.0])) == pytest.approx(14.203125)


def test_trajectories_start_at_start_and_converge_on_the_bowl():
    paths = lab.trajectories(["adam", "momentum", "lbfgs"], "quadratic", steps=300)
    for label, path in paths.items():
        assert path.shape == (301, 2)
        np.testing.assert_array_equal(path[0], lab.get("quadratic").start)
        assert np.linalg.norm(path[-1]) < 1e-2, label


def test_rosenbrock_long_valley_separates_first_and_second_order():
    paths = lab.trajectories(["sgd", "lbfgs"], "rosenbrock", steps=200)
    np.testing.assert_allclose(paths["lbfgs"][-1], [1, 1], atol=1e-4)
    assert np.linalg.norm(paths["sgd"][-1] - 1) > 0.1   # still crawling along the valley


def test_instances_and_a_given_learning_rate():
    paths = lab.trajectories([SGD(learning_rate=0.01), Adam(learning_rate=0.1)], "quadratic", steps=10)
    assert set(paths) == {"SGD", "Adam"}
    one = lab.trajectories(["sgd"], "quadratic", steps=1, learning_rate=0.01)["sgd"]
    # one SGD step from (-4, 1): gradient (x, 50 y) = (-4, 50)
    np.testing.assert_allclose(one[1], [-4 + 0.01 * 4, 1 - 0.01 * 50])


def test_a_diverging_run_stops_with_a_shorter_path():
    path = lab.trajectories(["sgd"], "quadratic", steps=2000, learning_rate=1.0)["sgd"]
    assert len(path) < 2001 and np.isfinite(path).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown test function 'bael'"):
        lab.trajectories(["sgd"], "bael")
    with pytest.raises(ValueError, match="start point"):
        lab.trajectories(["sgd"], "beale", start=(1, 2, 3))
    with pytest.raises(ValueError, match="steps"):
        lab.trajectories(["sgd"], "beale", steps=0)


def test_plot_and_gif_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    paths = lab.trajectories("sgd,adam", "beale", steps=30)
    png = lab.plot_trajectories(paths, "beale", str(tmp_path / "b.png"))
    gif = lab.animate_trajectories(paths, "beale", str(tmp_path / "b.gif"), frames=5)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert open(gif, "rb").read(6) in (b"GIF89a", b"GIF87a")


def test_every_rule_runs_on_the_unbounded_saddle():
    # x² − y² falls forever along y: line searches must not divide by zero on it
    names = ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "rprop",
             "lbfgs", "bfgs", "newton"]
    paths = lab.trajectories(names, "saddle", steps=50)
    for name in names:
        assert np.isfinite(paths[name]).all(), name
    assert abs(paths["adam"][-1][1]) > abs(paths["adam"][0][1])   # it escapes along y


def test_a_line_search_that_finds_no_bottom_ends_the_path_instead_of_the_run():
    """Coordinate descent on the saddle (unbounded below): its line search gives up; the lab
    reports that path as stopped (shorter than steps + 1) and runs the other optimizers."""
    paths = lab.trajectories(["coordinate_descent", "sgd"], "saddle", steps=20)
    assert len(paths["coordinate_descent"]) < 21
    assert np.array_equal(paths["coordinate_descent"][0], lab.get("saddle").start)
    assert len(paths["sgd"]) == 21
