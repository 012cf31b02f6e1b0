"""Tree distances against hand-worked examples."""

import numpy as np
import pytest

from cti_repro.data.tree import distance_counts, label_distance_matrix, on_path_distances, topk_distances

# Home > Kitchen > Coffee > Drip ; Home > Garden ; Toys
PATHS = [["Home", "Kitchen", "Coffee", "Drip"], ["Home", "Kitchen", "Coffee"], ["Home", "Garden"], ["Toys"]]


def test_on_path_distances_by_hand():
    labels = ["Drip", "Coffee", "Garden", "Toys"]  # most_specific labels
    m = on_path_distances(["Coffee", "Home", "Toys"], labels, PATHS).toarray() - 1
    assert m.tolist() == [
        [1, 0, -1, -1],   # Coffee: Drip is one level below, Coffee exact, Garden a sibling branch, Toys another tree
        [3, 2, 1, -1],    # Home: the root of the first three paths
        [-1, -1, -1, 0],
    ]


def test_distance_uses_the_candidates_label_not_its_leaf():
    # "all" setting: the candidate is labelled Kitchen, its path goes down to Drip
    m = on_path_distances(["Drip", "Kitchen"], ["Kitchen"], [PATHS[0]]).toarray() - 1
    assert m.tolist() == [[2], [0]]
    with pytest.raises(ValueError, match="not on its path"):
        on_path_distances(["Drip"], ["Toys"], [PATHS[0]])


def test_topk_and_counts():
    m = on_path_distances(["Coffee", "Home"], ["Drip", "Coffee", "Garden", "Toys"], PATHS)
    assert topk_distances(m, np.array([[3, 0], [2, 1]])).tolist() == [[-1, 1], [1, 2]]
    assert distance_counts(m).tolist() == [[1, 1, 0, 0], [0, 1, 1, 1]]
    assert distance_counts(m, max_distance=1).tolist() == [[1, 1], [0, 1]]


def test_label_distance_matrix():
    labels = ["Coffee", "Drip", "Garden", "Home", "Toys"]
    d = label_distance_matrix(labels, PATHS)
    assert d.tolist() == [
        [0, 1, -1, 2, -1],
        [1, 0, -1, 3, -1],
        [-1, -1, 0, 1, -1],
        [2, 3, 1, 0, -1],
        [-1, -1, -1, -1, 0],
    ]
    assert (d == d.T).all()
