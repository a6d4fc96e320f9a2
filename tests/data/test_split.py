import pytest

from visiontune.data.dataset import Sample
from visiontune.data.split import parse_ratios, stratified_split
from visiontune.errors import ConfigError


def _samples(per_class):
    return [Sample(f"{c}/{i}.png", c) for c, n in enumerate(per_class) for i in range(n)]


def test_stratified_and_deterministic():
    s = _samples([50, 10, 3])
    a = stratified_split(s, [0.8, 0.2], seed=1)
    b = stratified_split(s, [0.8, 0.2], seed=1)
    assert a == b
    train, val = a
    assert len(train) + len(val) == len(s) and not set(train) & set(val)
    counts = [sum(1 for x in val if x.label == c) for c in range(3)]
    assert counts == [10, 2, 1]  # every class represented, in proportion
    assert stratified_split(s, [0.8, 0.2], seed=2) != a


@pytest.mark.parametrize("text,msg", [("0.8", "two or three"), ("0.5,0.2", "add up to 1"), ("a,b", "numbers")])
def test_bad_ratios(text, msg):
    with pytest.raises(ConfigError, match=msg):
        parse_ratios(text)
