import numpy as np

from ifc_core._knn import knn_probability


def test_weights_follow_distance_and_sum_per_token():
    dist = np.array([[0.0, 10.0, np.inf]])
    values = np.array([[7, 7, -1]])
    assert knn_probability(dist, values, np.array([7]), 10.0)[0] == 1.0
    values = np.array([[7, 8, -1]])
    p7 = knn_probability(dist, values, np.array([7]), 10.0)[0]
    p8 = knn_probability(dist, values, np.array([8]), 10.0)[0]
    assert p7 > p8 > 0 and abs(p7 + p8 - 1.0) < 1e-12
    assert np.isclose(p7 / p8, np.e)


def test_no_neighbours_give_zero():
    dist = np.full((2, 3), np.inf)
    values = np.full((2, 3), -1)
    assert (knn_probability(dist, values, np.array([1, 2]), 5.0) == 0).all()
